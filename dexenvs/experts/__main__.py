"""Scripted-expert rollouts with videos: `python -m dexenvs.experts` (all four tasks) or `--task pour --episodes 5`.

Prints each episode's scenario and success, the success rate, and writes one mp4 per episode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import gymnasium as gym

from dexenvs.cli import Count, NonNegative, check_output, run_cli
from dexenvs.experts import rollout
from dexenvs.rates import format_rate
from dexenvs.tasks import TaskName, get_task, task_names


@dataclass
class Args:
    task: TaskName | Literal["all"] = "all"
    """one task, or every task in turn"""
    episodes: Count = 2
    """episodes per task"""
    split: Literal["train", "test_objects", "test_oep"] = "train"
    seed: NonNegative = 0
    video_dir: Path | None = Path("videos")
    """where mp4s go (<video-dir>/<task>/); `--video-dir None` skips rendering"""
    overwrite: bool = False
    """replace the videos of an earlier run in <video-dir>/<task>"""

    def tasks(self) -> list[str]:
        return task_names() if self.task == "all" else [self.task]

    def check(self) -> None:
        for task in self.tasks() if self.video_dir else []:
            d = self.video_dir / task
            if d.is_dir() and any(d.iterdir()):
                check_output("video_dir", d, self)


def main(args: Args) -> dict[str, float]:
    """Runs the expert of each requested task; returns its success rate per task."""
    tasks = args.tasks()
    wins = {task: run_task(task, args) for task in tasks}
    if len(tasks) > 1:
        print("expert success: " + ", ".join(f"{t} {format_rate(w, args.episodes)}" for t, w in wins.items()))
    return {t: w / args.episodes for t, w in wins.items()}


def run_task(task: str, args: Args) -> int:
    """The expert's successes in `args.episodes` episodes of `task`."""
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
    print(f"[{task}] expert success {format_rate(wins, args.episodes)} on split {args.split} "
          f"({time.perf_counter() - t0:.1f} s)" + (f"; videos in {args.video_dir / task}" if args.video_dir else ""))
    return wins


if __name__ == "__main__":
    run_cli(main, Args)
