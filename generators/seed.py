"""Seed demos: `python -m generators.seed --task grasp` writes one successful scripted-expert demo (the stand-in for a
teleoperated one) with its phase labels to `demos/<task>/seed.hdf5`.

The expert runs from seed `--seed` on `train` scenarios (or on `--scenario`) until an episode succeeds; the file
records the env id and kwargs so replay and augmentation rebuild the same env.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import tyro

import dexenvs  # noqa: F401
from dexenvs.experts import EXPERTS, TaskName, episode_options, rollout
from generators.dataset import DatasetWriter, Episode
from generators.recorder import Recorder


@dataclass
class Args:
    task: TaskName = "grasp"
    out: Path | None = None
    """default: demos/<task>/seed.hdf5"""
    seed: int = 0
    obs_mode: str = "state"
    """state, or rgb to record the head camera too"""
    max_tries: int = 20
    scenario: str | None = None
    """pin the seed's scenario, object|environment|pose (e.g. a tray for the lift: tray_00|studio-white-blue|p25);
    default: drawn from the train split by --seed"""


def record_expert_episode(env: Recorder, task: str, seed: int, options: dict | None = None) -> Episode:
    """One scripted-expert episode through a Recorder, stopped at success or the expert's horizon."""
    out = rollout(env, EXPERTS[task][1](env.unwrapped), seed=seed, options=options)
    return env.episode(dict(generator="scripted_expert", source=None, flywheel_iteration=0),
                       phases=[p[0] for p in out["phases"]])


def env_args_of(env) -> dict:
    base = env.unwrapped
    mode = base.control_mode
    if isinstance(mode, dict):  # several hands: ManiSkill reports one mode per agent; ours share one
        modes = set(mode.values())
        mode = modes.pop() if len(modes) == 1 else mode
    kwargs = dict(obs_mode=base.obs_mode, control_mode=mode, robot_uids=list(base.robot_names),
                  split=base.split, **base.task_kwargs)
    return dict(env_name=base.spec.id if base.spec else type(base).__name__, env_type="dexsuite", env_kwargs=kwargs,
                robot=list(base.robot_names), control_mode=mode)


def main(args: Args) -> Path:
    env_id = EXPERTS[args.task][0]
    out = args.out or Path("demos") / args.task / "seed.hdf5"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = Recorder(gym.make(env_id, obs_mode=args.obs_mode).unwrapped)
    for s in range(args.seed, args.seed + args.max_tries):
        options = episode_options(args.task, s) or {}
        if args.scenario is not None:
            options["scenario"] = args.scenario
        ep = record_expert_episode(env, args.task, s, options or None)
        print(f"[seed] {args.task} seed {s} {ep.scenario}: {'success' if ep.success else 'FAIL'} ({len(ep)} steps)")
        if ep.success:
            break
    else:
        raise RuntimeError(f"the {args.task} expert did not succeed in {args.max_tries} tries from seed {args.seed}")
    if out.exists():
        out.unlink()
    with DatasetWriter(out, env_args_of(env)) as w:
        w.add(ep)
    print(f"[seed] wrote {out}: 1 demo, {len(ep)} steps, phases {ep.phase_names}")
    return out


if __name__ == "__main__":
    main(tyro.cli(Args))
