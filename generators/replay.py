"""Replay a dataset: `python -m generators.replay demos/grasp/seed.hdf5 [--by state|action|both] [--obs-mode rgb
--out demos/grasp/seed_rgb.hdf5] [--video-dir videos/replay]`.

- by state (exact): each step sets the recorded sim state and re-evaluates the task (the success hold counter is
  re-derived step by step), so the recorded success must come back exactly;
- by action: resets to the recorded scenario and seed and re-simulates the recorded actions; reports whether success
  reproduces and how far the object ends from where it ended in the recording.
With `--obs-mode`, the by-state pass re-renders the observations in that mode and `--out` writes them as a new dataset;
`--video-dir` writes one mp4 per demo.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import tyro

from dexenvs.cli import Count, DexError, ExistingPath, NewPath, UsageError, run_cli
from dexenvs.results import atomic_write
from dexenvs.trajectory import DatasetWriter, Episode, demo_names, flatten_obs, make_env, open_dataset, read_episode


@dataclass
class Args:
    path: tyro.conf.Positional[ExistingPath]
    by: Literal["state", "action", "both"] = "both"
    obs_mode: str | None = None
    """re-render observations in this mode (e.g. rgb) during the by-state pass"""
    out: NewPath | None = None
    """with --obs-mode: write the re-rendered dataset here"""
    overwrite: bool = False
    """replace an existing --out"""
    video_dir: Path | None = None
    max_demos: Count | None = None
    """replay the first this many demos (default: all)"""

    def check(self) -> None:
        if self.out is not None and self.by == "action":
            raise UsageError("out", self.out, "re-rendered observations come from the by-state pass: use --by state "
                                              "or both")


def _reset(env, ep: Episode):
    env.reset(seed=ep.seed, options=dict(ep.reset_options, scenario=ep.scenario))


def replay_by_state(env, ep: Episode, frames: list | None = None) -> tuple[bool, dict[str, np.ndarray]]:
    """Sets each recorded state in turn; returns whether the task succeeded and the observations re-read before each
    action (in the env's obs mode)."""
    _reset(env, ep)
    obs = []
    success = False
    for t in range(len(ep)):
        env.set_state(torch.as_tensor(ep.states[t][None]))
        env._snap = None
        obs.append(flatten_obs(env.get_obs(unflattened=True)))
        if frames is not None:
            frames.append(env.render()[0].cpu().numpy())
        env.set_state(torch.as_tensor(ep.states[t + 1][None]))
        env._after_control_step()  # what a real step does after physics: fresh snapshot, success hold counter
        success |= bool(env.evaluate()["success"][0])
    return success, {k: np.stack([o[k] for o in obs]) for k in obs[0]}


def replay_by_action(env, ep: Episode) -> tuple[bool, float]:
    """Re-simulates the actions; returns success and the final object position error (m) against the recording."""
    _reset(env, ep)
    success = False
    for a in ep.actions:
        info = env.step(torch.as_tensor(a[None]))[-1]
        success |= bool(info["success"][0])
    replayed = env.obj.pose.p[0].cpu().numpy()
    env.set_state(torch.as_tensor(ep.states[-1][None]))  # where the recording left the object
    return success, float(np.linalg.norm(replayed - env.obj.pose.p[0].cpu().numpy()))


def main(args: Args) -> dict:
    with open_dataset(args.path) as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        names = demo_names(f)[: args.max_demos]
        episodes = [read_episode(f["data"][n]) for n in names]
    if not names:
        raise DexError(f"{args.path} holds no demos", hint="nothing to replay")
    env = make_env(env_args, args.obs_mode, render=args.video_dir is not None)
    writer = None
    if args.out:
        out_args = json.loads(json.dumps(env_args))
        out_args["env_kwargs"]["obs_mode"] = env.obs_mode
        if args.overwrite:  # the new file replaces the old one only when it is complete
            tmp = args.out.with_name(f".{args.out.stem}.partial{args.out.suffix}")
            shutil.rmtree(tmp.with_name(tmp.name + ".episodes"), ignore_errors=True)
            tmp.unlink(missing_ok=True)
        writer = DatasetWriter(tmp if args.overwrite else args.out, out_args)
    rows = []
    for name, ep in zip(names, episodes):
        row = dict(demo=name, scenario=ep.scenario, recorded=ep.success)
        if args.by in ("state", "both"):
            frames = [] if args.video_dir else None
            row["by_state"], obs = replay_by_state(env, ep, frames)
            if writer is not None:
                writer.add(Episode(**{**ep.__dict__, "obs": obs, "provenance": dict(ep.provenance, rerendered=env.obs_mode)}))
            if frames:
                import imageio.v3 as iio

                with atomic_write(args.video_dir / f"{args.path.stem}_{name}.mp4") as tmp_video:
                    iio.imwrite(tmp_video, np.stack(frames), fps=env.control_freq)
        if args.by in ("action", "both"):
            row["by_action"], row["final_obj_err_m"] = replay_by_action(env, ep)
        rows.append(row)
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    if writer is not None:
        writer.close()
        if args.overwrite:
            os.replace(tmp, args.out)
    summary = dict(demos=len(rows), recorded_success=sum(r["recorded"] for r in rows))
    for key in ("by_state", "by_action"):
        if key in rows[0]:
            summary[f"{key}_success"] = sum(r[key] for r in rows)
            summary[f"{key}_reproduces"] = sum(r[key] == r["recorded"] for r in rows)
    print(f"[replay] {args.path}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    return dict(summary, rows=rows)


if __name__ == "__main__":
    run_cli(main, Args)
