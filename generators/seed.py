"""Seed demos: `python -m generators.seed --task grasp` writes one successful scripted-expert demo (the stand-in for a
teleoperated one) with its phase labels to `demos/<task>/seed.hdf5`.

The expert runs from seed `--seed` on `train` scenarios until an episode succeeds; `--scenarios A B ...` pins one demo
to each scenario instead (several seeds, e.g. one per object category: A_EP carries each onto its own category). The
file records the env id and kwargs so replay and augmentation rebuild the same env.
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
    scenarios: tuple[str, ...] = ()
    """pin the seed demos' scenarios, object|environment|pose, one demo each (e.g. a wide box and a tray for the lift:
    wide_box_02|studio-white-blue|p25 tray_00|studio-white-blue|p25); default: one demo drawn from the train split"""


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
    eps = [_first_success(env, args, scenario) for scenario in (args.scenarios or (None,))]
    if out.exists():
        out.unlink()
    with DatasetWriter(out, env_args_of(env)) as w:
        for ep in eps:
            w.add(ep)
    print(f"[seed] wrote {out}: {len(eps)} demo(s), " + ", ".join(f"{ep.scenario} {len(ep)} steps" for ep in eps)
          + f"; phases {eps[0].phase_names}")
    return out


def _first_success(env: Recorder, args: Args, scenario: str | None) -> Episode:
    for s in range(args.seed, args.seed + args.max_tries):
        options = episode_options(args.task, s) or {}
        if scenario is not None:
            options["scenario"] = scenario
        ep = record_expert_episode(env, args.task, s, options or None)
        print(f"[seed] {args.task} seed {s} {ep.scenario}: {'success' if ep.success else 'FAIL'} ({len(ep)} steps)")
        if ep.success:
            return ep
    raise RuntimeError(f"the {args.task} expert did not succeed in {args.max_tries} tries from seed {args.seed}"
                       + (f" on {scenario}" if scenario else ""))


if __name__ == "__main__":
    main(tyro.cli(Args))
