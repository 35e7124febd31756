"""Seed demos: `python -m generators.seed --task grasp` writes one successful scripted-expert demo (the stand-in for a
teleoperated one) with its phase labels to `demos/<task>/seed.hdf5`.

The expert runs from seed `--seed` on `train` scenarios until an episode succeeds; `--scenarios A B ...` pins one demo
to each scenario instead (several seeds, e.g. one per object category: A_EP carries each onto its own category). The
file records the env id and kwargs so replay and augmentation rebuild the same env.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import gymnasium as gym

from dexenvs.cli import Count, DexError, NonNegative, UsageError, check_output, run_cli
from dexenvs.experts import rollout
from dexenvs.scenarios import Scenario
from dexenvs.tasks import TaskName, get_task
from dexenvs.trajectory import DatasetWriter, Episode, Recorder, env_args_of


def record_expert_episode(env: Recorder, task: str, seed: int, options: dict | None = None) -> Episode:
    """One scripted-expert episode through a Recorder, stopped at success or the expert's horizon."""
    out = rollout(env, get_task(task).expert(env.unwrapped), seed=seed, options=options)
    return env.episode(dict(generator="scripted_expert", source=None, flywheel_iteration=0),
                       phases=[p[0] for p in out["phases"]])


def record_seeds(task: str, out: Path, scenarios: Sequence[str] = (), seed: int = 0, obs_mode: str = "state",
                 max_tries: int = 20, overwrite: bool = False) -> Path:
    """Writes `out`: one successful expert demo per scenario of `scenarios`, or one drawn from the train split; each
    is the first success from reset seed `seed` on. An existing `out` is replaced only with `overwrite`, and only
    once the new demos are recorded (the file is written whole, then renamed over it)."""
    spec = get_task(task)
    check_output("out", out, overwrite=overwrite)
    space = spec.scenario_space()
    for sc in scenarios:
        try:
            space.validate(Scenario.parse(sc))
        except ValueError as e:
            raise UsageError("scenarios", sc, str(e)) from None
    env = Recorder(gym.make(spec.env_id, obs_mode=obs_mode).unwrapped)
    eps = [_first_success(env, task, seed, max_tries, scenario) for scenario in (scenarios or (None,))]
    args = env_args_of(env)
    env.close()
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    shutil.rmtree(tmp.with_name(tmp.name + ".episodes"), ignore_errors=True)  # a killed earlier attempt's parts
    tmp.unlink(missing_ok=True)
    with DatasetWriter(tmp, args) as w:
        for ep in eps:
            w.add(ep)
    os.replace(tmp, out)
    print(f"[seed] wrote {out}: {len(eps)} demo(s), " + ", ".join(f"{ep.scenario} {len(ep)} steps" for ep in eps)
          + f"; phases {eps[0].phase_names}")
    return out


def _first_success(env: Recorder, task: str, seed: int, max_tries: int, scenario: str | None) -> Episode:
    for s in range(seed, seed + max_tries):
        options = get_task(task).episode_options(s)
        if scenario is not None:
            options["scenario"] = scenario
        ep = record_expert_episode(env, task, s, options or None)
        print(f"[seed] {task} seed {s} {ep.scenario}: {'success' if ep.success else 'FAIL'} ({len(ep)} steps)")
        if ep.success:
            return ep
    raise DexError(f"the {task} expert did not succeed in {max_tries} tries from seed {seed}"
                   + (f" on {scenario}" if scenario else ""), hint="raise --max-tries or try another --seed")


@dataclass
class Args:
    task: TaskName = "grasp"
    out: Path | None = None
    """default: demos/<task>/seed.hdf5"""
    overwrite: bool = False
    """replace an existing --out"""
    seed: NonNegative = 0
    obs_mode: Literal["state", "rgb"] = "state"
    """state, or rgb to record the head camera too"""
    max_tries: Count = 20
    scenarios: tuple[str, ...] = ()
    """pin the seed demos' scenarios, object|environment|pose, one demo each (e.g. a wide box and a tray for the lift:
    wide_box_02|studio-white-blue|p25 tray_00|studio-white-blue|p25); default: one demo drawn from the train split"""

    def out_path(self) -> Path:
        return self.out or Path("demos") / self.task / "seed.hdf5"

    def check(self) -> None:
        check_output("out", self.out_path(), self)


def main(args: Args) -> Path:
    return record_seeds(args.task, args.out_path(), args.scenarios, args.seed, args.obs_mode, args.max_tries,
                        args.overwrite)


if __name__ == "__main__":
    run_cli(main, Args)
