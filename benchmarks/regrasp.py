"""DexRegrasp-v0 per split: `python -m benchmarks.regrasp --episodes 50 [--ppo runs/ppo_regrasp/ppo.zip]`.

The planner expert (and a PPO model, if given) play episodes seeded 0..N-1 on each split with the env's defaults
(`goals_per_episode` nearby goals in a row, each drawn when the last is reached). Prints and stores per split: the
episode success, the rate of reaching the first goal, the mean consecutive successes per episode and the drop rate,
each rate with its 95% interval. `--videos N` films the first N episodes of each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, ExistingPath, NonNegative, run_cli
from dexenvs.executor import executor
from dexenvs.experts.regrasp import RegraspPlanner
from dexenvs.rates import format_rate, rate_record

SPLITS = ("train", "test_objects", "test_oep")
ENV_ID = "DexRegrasp-v0"


class Runner:
    """One worker's env and actor (the planner, or a stable-baselines3 PPO model) for one split."""

    def __init__(self, split: str, ppo: str | None, videos: int = 0, video_dir: str = "videos/regrasp"):
        mode = "pd_joint_pos" if ppo is None else "pd_joint_target_delta_pos"
        self.env = gym.make(ENV_ID, split=split, control_mode=mode,
                            render_mode="rgb_array" if videos else None).unwrapped
        self.split, self.videos, self.video_dir = split, videos, Path(video_dir)
        self.name = "planner" if ppo is None else "ppo"
        if ppo is None:
            self.planner, self.model = RegraspPlanner(self.env), None
        else:
            from stable_baselines3 import PPO

            self.planner, self.model = None, PPO.load(ppo, device="cpu")

    def run(self, seed: int) -> dict:
        env = self.env
        obs, _ = env.reset(seed=seed)
        if self.planner:
            self.planner.reset()
        frames = [] if seed < self.videos else None
        for _ in range(env.max_episode_steps):
            if frames is not None:
                frames.append(np.asarray(env.render().cpu())[0])
            if self.planner:
                action, _ = self.planner.act()
            else:
                action = torch.as_tensor(self.model.predict(obs.cpu().numpy(), deterministic=True)[0])
            obs, _, _, _, info = env.step(action)
            if bool(info["success"][0]) or bool(info["fail"][0]):
                break
        if frames:
            import imageio.v2 as imageio

            from dexenvs.results import atomic_write

            self.video_dir.mkdir(parents=True, exist_ok=True)
            with atomic_write(self.video_dir / f"{self.name}_{self.split}_{seed}.mp4") as tmp:
                imageio.mimsave(tmp, frames, fps=20, format="mp4")
        return dict(scenario=str(env.scenarios[0]), success=bool(info["success"][0]), fail=bool(info["fail"][0]),
                    consecutive=int(info["consecutive_successes"][0]))

    def close(self) -> None:
        self.env.close()


def evaluate_split(split: str, episodes: int, workers: int, ppo: Path | None = None, videos: int = 0) -> dict:
    setup = (split, None if ppo is None else str(ppo), videos)
    rows = list(executor(workers).map(Runner, setup, Runner.run, range(episodes)))
    n = len(rows)
    first = sum(r["consecutive"] >= 1 for r in rows)
    return dict(episodes=n, success=rate_record(sum(r["success"] for r in rows), n), first_goal=rate_record(first, n),
                drop=rate_record(sum(r["fail"] for r in rows), n),
                consecutive_mean=float(np.mean([r["consecutive"] for r in rows])),
                failures=[r["scenario"] for r in rows if not r["success"]])


@dataclass
class Args(ResultArgs):
    episodes: Count = 50
    workers: Count = 2
    ppo: ExistingPath | None = None
    """also evaluate this PPO model (agents.ppo's ppo.zip)"""
    videos: NonNegative = 0
    """film the first N episodes of each split and actor to videos/regrasp/<actor>_<split>_<seed>.mp4"""
    out: Path = RESULTS

    def outputs(self) -> list[Path]:
        return [self.out / "regrasp.json"]


def main(args: Args) -> dict:
    from dexenvs.tasks.regrasp import DexRegraspEnv

    goals = DexRegraspEnv.__init__.__kwdefaults__["goals_per_episode"]
    res: dict = {}
    actors = [("planner", None)] + ([("ppo", args.ppo)] if args.ppo else [])
    t0 = time.perf_counter()
    for name, ppo in actors:
        res[name] = {sp: evaluate_split(sp, args.episodes, args.workers, ppo, args.videos) for sp in SPLITS}
    print(f"{ENV_ID}: {args.episodes} episodes per split, {goals} nearby goals per episode "
          f"({time.perf_counter() - t0:.0f} s)")
    print(f"{'actor':8s} {'split':13s} {'episode success':>28s} {'first goal reached':>28s} {'goals/ep':>8s} "
          f"{'dropped':>28s}")
    for name, per in res.items():
        for sp, r in per.items():
            f = lambda rec: format_rate(rec["successes"], rec["episodes"])  # noqa: E731
            print(f"{name:8s} {sp:13s} {f(r['success']):>28s} {f(r['first_goal']):>28s} {r['consecutive_mean']:8.2f} "
                  f"{f(r['drop']):>28s}")
    save_result(args.out / "regrasp.json", dict(res, goals_per_episode=goals), args)
    return res


if __name__ == "__main__":
    run_cli(main, Args)
