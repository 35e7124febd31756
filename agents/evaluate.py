"""Evaluate a checkpoint in the sim: `python -m agents.evaluate --ckpt runs/X/checkpoint.pt [--env DexGrasp-v0]
[--split test_oep] [--episodes 20] [--seeds 5] [--video]`.

Seed s runs `--episodes` episodes with reset seeds s*100000 + i (the scenario is drawn from the split by that seed) and
the policy reseeded the same way. Reports the success rate's mean and std over seeds and per-scenario results, writes
JSON (default `<ckpt dir>/eval_<env>_<split>.json`) and, with `--video`, mp4s of the first episodes of each seed.
Episodes spread over `--workers` processes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import tyro

import dexenvs  # noqa: F401
from agents.checkpoint import load_model, read_checkpoint
from agents.model import ChunkModel
from agents.policy import Policy
from dexenvs.experts import EXPERTS, episode_options

TASK_OF_ENV = {env_id: task for task, (env_id, _) in EXPERTS.items()}


def make_eval_env(cfg: dict, env_id: str | None = None, split: str = "train", video: bool = False):
    env_id = env_id or cfg["env_args"]["env_name"]
    kwargs = dict(cfg["env_args"]["env_kwargs"])
    kwargs.update(obs_mode="rgb" if cfg["images"] else "state_dict", split=split)
    env = gym.make(env_id, render_mode="rgb_array" if video else None, **kwargs)
    if env.unwrapped.single_action_space.shape[-1] != cfg["action_dim"]:
        raise ValueError(f"{env_id} with {kwargs.get('robot_uids')} takes {env.unwrapped.single_action_space.shape[-1]}-D "
                         f"actions; the policy outputs {cfg['action_dim']}-D")
    return env


def run_episode(env, policy: Policy, reset_seed: int, frames: list | None = None) -> dict:
    base = env.unwrapped
    task = TASK_OF_ENV.get(base.spec.id if base.spec else "", "")
    obs, info = env.reset(seed=reset_seed, options=episode_options(task, reset_seed))
    policy.reset(seed=reset_seed)
    max_steps = env.spec.max_episode_steps if env.spec and env.spec.max_episode_steps else 200
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


def run_jobs(model: ChunkModel, env_id: str | None, split: str, jobs: list[tuple[int, int]], video_dir: Path | None = None,
             videos_per_seed: int = 0, ddim_steps: int | None = None) -> list[dict]:
    """jobs: (seed, episode) pairs -> one result dict each."""
    env = make_eval_env(model.cfg, env_id, split, video=video_dir is not None)
    policy = Policy(model, ddim_steps=ddim_steps)
    out = []
    for s, i in jobs:
        frames = [] if video_dir is not None and i < videos_per_seed else None
        r = run_episode(env, policy, s * 100_000 + i, frames)
        out.append(dict(r, seed=s, episode=i))
        if frames:
            import imageio.v2 as imageio

            video_dir.mkdir(parents=True, exist_ok=True)
            name = f"seed{s}_ep{i}_{'success' if r['success'] else 'fail'}.mp4"
            imageio.mimsave(video_dir / name, frames, fps=20)
    env.close()
    return out


def _worker(ckpt: str, ema: bool, *args) -> list[dict]:
    torch.set_num_threads(1)
    return run_jobs(load_model(ckpt, ema), *args)


def summarize(results: list[dict], seeds: list[int]) -> dict:
    per_seed = {s: float(np.mean([r["success"] for r in results if r["seed"] == s])) for s in seeds}
    per_scenario: dict[str, list] = {}
    for r in results:
        per_scenario.setdefault(r["scenario"], []).append(bool(r["success"]))
    rates = list(per_seed.values())
    return dict(success_mean=float(np.mean(rates)), success_std=float(np.std(rates)), per_seed=per_seed,
                episodes=len(results), mean_steps=float(np.mean([r["steps"] for r in results])),
                per_scenario={k: dict(episodes=len(v), success=float(np.mean(v))) for k, v in sorted(per_scenario.items())},
                results=results)


@dataclass
class Args:
    ckpt: Path
    env: str | None = None
    """default: the env of the training dataset"""
    split: Literal["train", "test_objects", "test_oep"] = "train"
    episodes: int = 20
    """per seed"""
    seeds: int = 5
    video: bool = False
    videos_per_seed: int = 2
    out: Path | None = None
    workers: int = 2
    ddim_steps: int | None = None
    ema: bool = True


def main(args: Args) -> dict:
    cfg = read_checkpoint(args.ckpt)["config"]
    env_id = args.env or cfg["env_args"]["env_name"]
    if env_id not in gym.registry:
        raise ValueError(f"unknown env {env_id!r}; dexsuite envs: {sorted(TASK_OF_ENV)}")
    seeds = list(range(args.seeds))
    jobs = [(s, i) for s in seeds for i in range(args.episodes)]
    video_dir = args.ckpt.parent / "videos" / f"{env_id}_{args.split}" if args.video else None
    t0 = time.perf_counter()
    common = (env_id, args.split)
    if args.workers <= 1:
        results = run_jobs(load_model(args.ckpt, args.ema), *common, jobs, video_dir, args.videos_per_seed, args.ddim_steps)
    else:
        parts = [jobs[w :: args.workers] for w in range(args.workers)]
        with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as ex:
            futs = [ex.submit(_worker, str(args.ckpt), args.ema, *common, p, video_dir, args.videos_per_seed,
                              args.ddim_steps) for p in parts if p]
            results = sorted((r for f in futs for r in f.result()), key=lambda r: (r["seed"], r["episode"]))
    summary = dict(ckpt=str(args.ckpt), env=env_id, split=args.split, algo=cfg["algo"], obs=cfg["obs"],
                   seconds=round(time.perf_counter() - t0, 1), **summarize(results, seeds))
    out = args.out or args.ckpt.parent / f"eval_{env_id}_{args.split}.json"
    out.write_text(json.dumps(summary, indent=1))
    print(f"[evaluate] {cfg['algo']} ({cfg['obs']}) on {env_id} {args.split}: success {summary['success_mean']:.1%} "
          f"± {summary['success_std']:.1%} over {len(seeds)} seeds x {args.episodes} episodes "
          f"({summary['seconds']:.0f} s); wrote {out}" + (f" and videos in {video_dir}" if video_dir else ""))
    return summary


if __name__ == "__main__":
    main(tyro.cli(Args))
