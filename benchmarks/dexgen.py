"""The DexGen controller benchmarked as DexterityGen was: `python -m benchmarks.dexgen --checkpoint runs/dexgen/checkpoint.pt`.

1. Holding under noisy commands (DexGen's Fig. 8 protocol, on DexRegrasp-v0): the planner expert's keypoint motion
   is the command, clean or corrupted (additive U(+-0.75), U(+-1.5) in the training motions' standard deviations;
   multiplicative U(0, 0.5), U(0, 1)); it is executed directly (retargeted to joint targets, `DirectController`) or
   through the controller at each `--alphas`. An episode runs until the object drops or `--horizon` steps pass, with
   an endless stream of nearby goals. Reported per split, noise and executor: the mean holding time (s, with a
   bootstrap 95% interval; episodes that never drop count at the horizon), the rate of holding to the horizon, the
   goals reached per episode, and each controller's holding time over the direct one's.
2. Coarse-teleoperation regrasp: the command heads for one nearby goal grasp's keypoints (`TeleopCommand`); success
   is reaching that goal within `--teleop-steps`; direct versus through the controller.
3. Latency: one control step (guided DDIM + inverse dynamics) at batch 1, median over `--latency-reps`, unguided and
   guided, with torch's threads as they are and on one thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import AtLeast, Count, ExistingPath, NonNegative, run_cli
from dexenvs.executor import executor
from dexenvs.rates import format_rate, rate_record

ENV_ID = "DexRegrasp-v0"
SPLITS = ("train", "test_objects")
NOISES = (("clean", 0.0), ("add", 0.75), ("add", 1.5), ("mul", 0.5), ("mul", 1.0))


def noise_name(kind: str, level: float) -> str:
    return "clean" if kind == "clean" else f"{kind} {level:g}"


def _flag(info, key: str):
    return np.asarray(info[key]).reshape(-1)[0]


class Runner:
    """One worker's envs, one per (split, executor, episode kind), made on first use."""

    def __init__(self, checkpoint: str, horizon: int, teleop_steps: int):
        from agents.dexgen.train import load_dexgen

        self.model = load_dexgen(checkpoint)
        self.horizon, self.teleop_steps = horizon, teleop_steps
        self.envs: dict = {}

    def env(self, split: str, executor_name: str, teleop: bool):
        from agents.dexgen.controller import DexGenController, DirectController

        key = (split, executor_name, teleop)
        if key not in self.envs:
            env = gym.make(ENV_ID, control_mode="pd_joint_pos", split=split, goals_per_episode=1 if teleop else 10_000,
                           max_episode_steps=self.teleop_steps if teleop else self.horizon)
            if executor_name == "direct":
                w = DirectController(env, self.model.horizon)
            else:
                w = DexGenController(env, model=self.model, alpha=float(executor_name.split("=")[1]))
            self.envs[key] = w
        return self.envs[key]

    def run(self, job: dict) -> dict:
        from agents.dexgen.commands import PlannerCommand, TeleopCommand

        teleop = job["kind"] == "teleop"
        w = self.env(job["split"], job["executor"], teleop)
        seed = job["seed"]
        if teleop:
            src = TeleopCommand(w, steps=self.teleop_steps // 2)
        else:
            src = PlannerCommand(w, job["noise"], job["level"], self.model.motion_std.numpy())
        w.reset(seed=seed)
        src.reset(seed)
        steps, info = 0, {}
        for steps in range(1, (self.teleop_steps if teleop else self.horizon) + 1):
            _, _, _, _, info = w.step(src())
            if bool(_flag(info, "fail")) or (teleop and bool(_flag(info, "success"))):
                break
        return dict(job, steps=steps, dropped=bool(_flag(info, "fail")), success=bool(_flag(info, "success")),
                    goals=int(_flag(info, "consecutive_successes")), scenario=str(w.unwrapped.scenarios[0]))

    def close(self):
        for w in self.envs.values():
            w.close()


def bootstrap_mean(x: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (reps, len(x)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def latency(checkpoint: str, reps: int) -> dict:
    from agents.dexgen.train import load_dexgen

    model = load_dexgen(checkpoint)
    f = model.cfg["feature_dim"]
    hist, mode = torch.randn(1, model.history, f), torch.zeros(1, dtype=torch.long)
    cmd = torch.zeros(1, model.horizon, model.K, 3)
    res = {}
    threads = torch.get_num_threads()
    for n_threads in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(n_threads)
        for alpha in (0.0, 1.0):
            ts = []
            for _ in range(reps + 5):
                t = time.perf_counter()
                with torch.no_grad():
                    cond = model.condition(hist, mode)
                    model.inverse(cond, model.sample(cond, cmd, alpha))
                ts.append(time.perf_counter() - t)
            res[f"{'guided' if alpha else 'unguided'}_threads{n_threads}_ms"] = 1000 * float(np.median(ts[5:]))
    torch.set_num_threads(threads)
    return dict(res, ddim_steps=model.cfg["ddim_steps"], params=sum(p.numel() for p in model.parameters()))


@dataclass
class Args(ResultArgs):
    checkpoint: ExistingPath = Path("runs/dexgen/checkpoint.pt")
    episodes: Count = 10
    """episodes per split, noise and executor"""
    horizon: Count = 200
    """control steps a holding episode may last (20 Hz)"""
    alphas: tuple[Annotated[float, AtLeast(0)], ...] = (1.0,)
    """guidance strengths to run the controller at"""
    noises: tuple[str, ...] = tuple(noise_name(*n) for n in NOISES)
    """which of DexGen's corruptions to run"""
    teleop_episodes: NonNegative = 10
    teleop_steps: Count = 60
    latency_reps: Count = 50
    workers: Count = 2
    out: Path = RESULTS
    name: str = "dexgen"

    def outputs(self) -> list[Path]:
        return [self.out / f"{self.name}.json"]

    def check(self) -> None:
        from dexenvs.cli import UsageError

        valid = [noise_name(*n) for n in NOISES]
        for n in self.noises:
            if n not in valid:
                raise UsageError("noises", n, f"valid: {valid}")
        ResultArgs.check(self)


def main(args: Args) -> dict:
    noises = [n for n in NOISES if noise_name(*n) in args.noises]
    executors = ["direct"] + [f"dexgen alpha={a:g}" for a in args.alphas]
    jobs = [dict(kind="hold", split=sp, executor=ex, noise=k, level=l, seed=s)
            for sp in SPLITS for (k, l) in noises for ex in executors for s in range(args.episodes)]
    jobs += [dict(kind="teleop", split=sp, executor=ex, noise="teleop", level=0.0, seed=s)
             for sp in SPLITS for ex in executors for s in range(args.teleop_episodes)]
    from tqdm import tqdm

    lat = latency(str(args.checkpoint), args.latency_reps)  # first, on an idle machine
    t0 = time.perf_counter()
    rows = list(tqdm(executor(args.workers).map(Runner, (str(args.checkpoint), args.horizon, args.teleop_steps),
                                                 Runner.run, jobs), total=len(jobs), desc="dexgen benchmark"))
    freq = 20.0
    hold: dict = {}
    for sp in SPLITS:
        for k, l in noises:
            per = {}
            for ex in executors:
                rs = [r for r in rows if r["kind"] == "hold" and r["split"] == sp and r["executor"] == ex
                      and r["noise"] == k and r["level"] == l]
                secs = np.array([r["steps"] / freq for r in rs])
                per[ex] = dict(hold_seconds=float(secs.mean()), hold_ci=bootstrap_mean(secs),
                               held_to_horizon=rate_record(sum(not r["dropped"] for r in rs), len(rs)),
                               goals_per_episode=float(np.mean([r["goals"] for r in rs])), episodes=len(rs))
            for ex in executors[1:]:
                per[ex]["hold_ratio"] = per[ex]["hold_seconds"] / max(per["direct"]["hold_seconds"], 1e-9)
            hold.setdefault(sp, {})[noise_name(k, l)] = per
    teleop = {sp: {ex: rate_record(sum(r["success"] for r in rows if r["kind"] == "teleop" and r["split"] == sp
                                       and r["executor"] == ex),
                                   sum(1 for r in rows if r["kind"] == "teleop" and r["split"] == sp and r["executor"] == ex))
                   for ex in executors} for sp in SPLITS} if args.teleop_episodes else {}
    print(f"DexGen on {ENV_ID}: {args.episodes} episodes per cell, horizon {args.horizon} steps "
          f"({args.horizon / freq:.0f} s) ({time.perf_counter() - t0:.0f} s)")
    print(f"{'split':13s} {'noise':9s} {'executor':18s} {'holding s [95% CI]':>22s} {'held to horizon':>26s} "
          f"{'goals/ep':>8s} {'x direct':>8s}")
    for sp, per_noise in hold.items():
        for nn, per in per_noise.items():
            for ex, r in per.items():
                h = r["held_to_horizon"]
                print(f"{sp:13s} {nn:9s} {ex:18s} {r['hold_seconds']:6.2f} [{r['hold_ci'][0]:5.2f}, {r['hold_ci'][1]:5.2f}]"
                      f" {format_rate(h['successes'], h['episodes']):>26s} {r['goals_per_episode']:8.2f} "
                      f"{r.get('hold_ratio', 1.0):8.2f}")
    for sp, per in teleop.items():
        for ex, r in per.items():
            print(f"teleop regrasp {sp:13s} {ex:18s} {format_rate(r['successes'], r['episodes'])}")
    print("latency per control step at batch 1: " + ", ".join(f"{k} {v:.1f}" for k, v in lat.items() if k.endswith("ms")))
    result = dict(hold=hold, teleop=teleop, latency=lat, rows=rows,
                  settings=dict(checkpoint=str(args.checkpoint), horizon=args.horizon, episodes=args.episodes,
                                alphas=list(args.alphas), teleop_steps=args.teleop_steps))
    save_result(args.out / f"{args.name}.json", result, args)
    return result


if __name__ == "__main__":
    run_cli(main, Args)
