"""Scripted-expert rollouts with videos: `python -m dexenvs.experts` (all four tasks) or `--task pour --episodes 5`.

Prints each episode's scenario and success, the success rate, and writes one mp4 per episode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import gymnasium as gym
import tyro

from dexenvs.experts import rollout
from dexenvs.tasks import TaskName, get_task, task_names


@dataclass
class Args:
    task: TaskName | Literal["all"] = "all"
    """one task, or every task in turn"""
    episodes: int = 2
    """episodes per task"""
    split: Literal["train", "test_objects", "test_oep"] = "train"
    seed: int = 0
    video_dir: Path | None = Path("videos")
    """where mp4s go; `--video-dir None` skips rendering"""


def main(args: Args) -> dict[str, float]:
    """Runs the expert of each requested task; returns its success rate per task."""
    tasks = task_names() if args.task == "all" else [args.task]
    rates = {task: run_task(task, args) for task in tasks}
    if len(tasks) > 1:
        print("expert success: " + ", ".join(f"{t} {r:.0%}" for t, r in rates.items()))
    return rates


def run_task(task: str, args: Args) -> float:
    from mani_skill.utils.wrappers.record import RecordEpisode

    spec = get_task(task)
    env = gym.make(spec.env_id, split=args.split, render_mode="rgb_array" if args.video_dir else None,
                   num_envs=1).unwrapped
    if args.video_dir:
        env = RecordEpisode(env, str(args.video_dir / task), save_trajectory=False, save_video=True,
                            video_fps=env.control_freq, info_on_video=False, max_steps_per_video=env.max_episode_steps)
    expert = spec.expert(env.unwrapped)
    wins, t0 = 0, time.perf_counter()
    for ep in range(args.episodes):
        options = spec.episode_options(args.seed + ep)
        out = rollout(env, expert, seed=args.seed + ep, options=options or None)
        ok = bool(out["success"][0])
        wins += ok
        print(f"[{task}] episode {ep} {env.unwrapped.scenarios[0]}{f' {options}' if options else ''}: {'success' if ok else 'FAIL'} ({out['steps']} steps)",
              flush=True)
    if args.video_dir:
        env.flush_video() if hasattr(env, "flush_video") else None
        env.close()
    rate = wins / args.episodes
    print(f"[{task}] expert success {wins}/{args.episodes} = {rate:.0%} on split {args.split} "
          f"({time.perf_counter() - t0:.1f} s)" + (f"; videos in {args.video_dir / task}" if args.video_dir else ""))
    return rate


if __name__ == "__main__":
    main(tyro.cli(Args))
