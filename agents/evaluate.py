"""Evaluate a checkpoint in the sim: `python -m agents.evaluate --ckpt runs/X/checkpoint.pt [--env DexGrasp-v0]
[--split test_oep] [--episodes 20] [--seeds 5] [--video]`.

Seed s runs `--episodes` episodes with reset seeds s*100000 + i (the scenario is drawn from the split by that seed) and
the policy reseeded the same way. Reports the success rate's mean and std over seeds and per-scenario results, writes
JSON (default `<ckpt dir>/eval_<env>_<split>.json`) and, with `--video`, mp4s of the first episodes of each seed.
Episodes spread over `--workers` processes. With `--residual DIR` (python -m agents.residual) it evaluates the base
policy and the combined policy (base + alpha * residual) on the same episodes and reports both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import gymnasium as gym
import numpy as np
import torch

import dexenvs  # noqa: F401  (registers the envs)
from agents.checkpoint import load_model, read_checkpoint
from agents.models import ChunkModel
from agents.policy import Policy
from agents.residual import load_residual
from dexenvs.cli import Count, ExistingPath, NonNegative, UsageError, check_output, run_cli
from dexenvs.executor import configure, executor
from dexenvs.rates import format_rate, wilson_interval
from dexenvs.results import atomic_write, provenance, save_json
from dexenvs.tasks import get_task, task_of_env


def make_eval_env(cfg: dict, env_id: str | None = None, split: str = "train", video: bool = False):
    env_id = env_id or cfg["env_args"]["env_name"]
    kwargs = dict(cfg["env_args"]["env_kwargs"])
    kwargs.update(obs_mode="rgb" if cfg["images"] else "state_dict", split=split)
    env = gym.make(env_id, render_mode="rgb_array" if video else None, **kwargs)
    if env.unwrapped.single_action_space.shape[-1] != cfg["action_dim"]:
        raise ValueError(f"{env_id} with {kwargs.get('robot_uids')} takes {env.unwrapped.single_action_space.shape[-1]}-D "
                         f"actions; the policy outputs {cfg['action_dim']}-D")
    return env


def run_episode(env, policy: Policy, reset_seed: int, frames: list | None = None, scenario: str | None = None,
                max_steps: int | None = None, reset_options: list[dict] | None = None) -> dict:
    """One episode until success, failure or the time limit (`max_steps`, default the env spec's); `scenario` fixes it
    (default: drawn from the env's split)."""
    spec = get_task(env.unwrapped.task_name)
    options = dict(spec.episode_options(reset_seed, reset_options or policy.cfg.get("reset_options")),
                   **({"scenario": scenario} if scenario else {}))
    obs, info = env.reset(seed=reset_seed, options=options)
    policy.reset(seed=reset_seed)
    max_steps = max_steps or (env.spec.max_episode_steps if env.spec and env.spec.max_episode_steps else 200)
    success = False
    for t in range(max_steps):
        if frames is not None:
            frames.append(_frame(env))
        obs, _, term, trunc, info = env.step(policy.act(obs))
        success = _item(info["success"])
        if success or _item(info["fail"]) or _item(term) or _item(trunc):
            break
    if frames is not None:
        frames.append(_frame(env))
    scenario = info["scenario"] if isinstance(info["scenario"], str) else info["scenario"][0]
    return dict(scenario=scenario, reset_seed=reset_seed, success=success, steps=t + 1)


def _item(x) -> bool:
    return bool(torch.as_tensor(x).reshape(-1)[0])


def _frame(env) -> np.ndarray:
    f = env.render()
    f = f.cpu().numpy() if isinstance(f, torch.Tensor) else np.asarray(f)
    return f[0] if f.ndim == 4 else f


class EpisodePlayer:
    """One worker's env and policy: plays evaluation jobs (seed, episode, scenario or None). `residual`: act with the
    combined policy of this trained residual on the model (at `residual_alpha`, default the residual's own).
    `reset_options`: ask these instead of what the policy's training data demonstrates (e.g. the other giver)."""

    def __init__(self, model: ChunkModel | str | Path, ema: bool = True, env_id: str | None = None, split: str = "train",
                 residual: str | None = None, residual_alpha: float | None = None, ddim_steps: int | None = None,
                 sampler: str = "ddim", reset_options: list[dict] | None = None, video_dir: Path | None = None,
                 videos_per_seed: int = 0):
        model = model if isinstance(model, ChunkModel) else load_model(model, ema)
        self.env = make_eval_env(model.cfg, env_id, split, video=video_dir is not None)
        self.policy = Policy(model, ddim_steps=ddim_steps, sampler=sampler)
        if residual:
            self.policy = load_residual(residual, base=self.policy, alpha=residual_alpha)
        self.reset_options, self.video_dir, self.videos_per_seed = reset_options, video_dir, videos_per_seed

    def play(self, job: tuple) -> dict:
        s, i, scenario = (*job, None)[:3]
        frames = [] if self.video_dir is not None and i < self.videos_per_seed else None
        r = run_episode(self.env, self.policy, s * 100_000 + i, frames, scenario, reset_options=self.reset_options)
        if frames:
            import imageio.v2 as imageio

            self.video_dir.mkdir(parents=True, exist_ok=True)
            name = f"seed{s}_ep{i}_{'success' if r['success'] else 'fail'}.mp4"
            with atomic_write(self.video_dir / name) as tmp:
                imageio.mimsave(tmp, frames, fps=20)
        return dict(r, seed=s, episode=i)

    def close(self) -> None:
        self.env.close()


def summarize(results: list[dict], seeds: list[int]) -> dict:
    per_seed = {s: float(np.mean([r["success"] for r in results if r["seed"] == s])) for s in seeds}
    per_scenario: dict[str, list] = {}
    for r in results:
        per_scenario.setdefault(r["scenario"], []).append(bool(r["success"]))
    rates = list(per_seed.values())
    successes = int(sum(bool(r["success"]) for r in results))
    return dict(success_mean=float(np.mean(rates)), success_std=float(np.std(rates)), successes=successes,
                interval=list(wilson_interval(successes, len(results))), per_seed=per_seed,
                episodes=len(results), mean_steps=float(np.mean([r["steps"] for r in results])),
                per_scenario={k: dict(episodes=len(v), success=float(np.mean(v))) for k, v in sorted(per_scenario.items())},
                results=results)


@dataclass
class Args:
    ckpt: ExistingPath
    env: str | None = None
    """default: the env of the training dataset"""
    split: Literal["train", "test_objects", "test_oep"] = "train"
    episodes: Count = 20
    """per seed"""
    seeds: Count = 5
    video: bool = False
    videos_per_seed: NonNegative = 2
    out: Path | None = None
    """default: <ckpt dir>/eval_<env>_<split>.json"""
    overwrite: bool = False
    """replace an existing --out"""
    workers: Count = 2
    ray: bool = False
    """play the episodes on a local Ray instead of this machine's process pool"""
    ray_address: str | None = None
    """join the Ray cluster at host:port instead"""
    ddim_steps: Count | None = None
    sampler: Literal["ddim", "ddpm"] = "ddim"
    """diffusion sampling: DDIM in --ddim-steps steps, or the full 100-step DDPM chain (slower, smoother chunks)"""
    ema: bool = True
    residual: ExistingPath | None = None
    """a trained residual (python -m agents.residual): evaluate the base and the combined policy"""

    def check(self) -> None:
        if self.env is not None:
            task_of_env(self.env)
        check_output("out", self.out_path(), self)

    def out_path(self) -> Path:
        env_id = self.env or read_checkpoint(self.ckpt)["config"]["env_args"]["env_name"]
        return self.out or self.ckpt.parent / f"eval_{env_id}_{self.split}.json"


def evaluate(model: ChunkModel | Path, env_id: str | None, split: str, seeds: int, episodes: int, workers: int = 2,
             residual: Path | None = None, scenarios: list[str] | None = None, video_dir: Path | None = None,
             videos_per_seed: int = 0, ddim_steps: int | None = None, ema: bool = True, sampler: str = "ddim",
             reset_options: list[dict] | None = None, residual_alpha: float | None = None, first_seed: int = 0) -> dict:
    """Success over `seeds` x `episodes` episodes of a checkpoint (or a model in memory), on `workers` processes; the
    summary of `summarize`. With `scenarios`, the episodes go through them in turn across seeds (seeds x episodes =
    len(scenarios) runs each once). Seeds are `first_seed`, `first_seed` + 1, ...; a different `first_seed` gives
    episodes no other evaluation plays."""
    for name, v in (("seeds", seeds), ("episodes", episodes), ("workers", workers)):
        if v < 1:
            raise UsageError(name, v, "must be >= 1")
    seed_list = list(range(first_seed, first_seed + seeds))
    jobs = [(s, i, scenarios[(k * episodes + i) % len(scenarios)] if scenarios else None)
            for k, s in enumerate(seed_list) for i in range(episodes)]
    t0 = time.perf_counter()
    setup = (model if isinstance(model, ChunkModel) else str(model), ema, env_id, split,
             str(residual) if residual else None, residual_alpha, ddim_steps, sampler, reset_options, video_dir,
             videos_per_seed)
    results = list(executor(workers).map(EpisodePlayer, setup, EpisodePlayer.play, jobs))
    return dict(seconds=round(time.perf_counter() - t0, 1), **summarize(results, seed_list))


def main(args: Args) -> dict:
    configure(args.ray, args.ray_address)
    cfg = read_checkpoint(args.ckpt)["config"]
    env_id = args.env or cfg["env_args"]["env_name"]
    task_of_env(env_id)  # an unknown env id fails here, naming the valid ones
    video_dir = args.ckpt.parent / "videos" / f"{env_id}_{args.split}" if args.video else None
    runs = {"base": None} | ({"combined": args.residual} if args.residual else {})
    summary = dict(ckpt=str(args.ckpt), env=env_id, split=args.split, algo=cfg["algo"], obs=cfg["obs"])
    for name, residual in runs.items():
        vd = (video_dir / name if args.residual else video_dir) if video_dir else None
        res = evaluate(args.ckpt, env_id, args.split, args.seeds, args.episodes, args.workers, residual,
                       video_dir=vd, videos_per_seed=args.videos_per_seed, ddim_steps=args.ddim_steps, ema=args.ema,
                       sampler=args.sampler)
        if args.residual:
            summary[name] = dict(res, residual=str(residual) if residual else None)
        else:
            summary.update(res)
        print(f"[evaluate] {cfg['algo']} ({cfg['obs']}{', ' + name if args.residual else ''}) on {env_id} {args.split}: "
              f"success {format_rate(res['successes'], res['episodes'])}, {res['success_mean']:.1%} ± "
              f"{res['success_std']:.1%} over {args.seeds} seeds x {args.episodes} episodes ({res['seconds']:.0f} s)"
              + (f", videos in {vd}" if vd else ""))
    out = args.out_path()
    save_json(out, dict(summary, provenance=provenance(args)))
    print(f"[evaluate] wrote {out}")
    return summary


if __name__ == "__main__":
    run_cli(main, Args)
