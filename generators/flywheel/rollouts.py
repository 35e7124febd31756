"""What the flywheel takes from its policy: rollouts on the next iteration's objects (`collect_rollouts`, on the
executor), and the A_EP sources made from them: each rollout's grasp on its category seed's motion
(`graft_rollouts`) and, with cover, the category seed relabelled onto the objects no rollout holds
(`cover_objects`)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from agents.checkpoint import load_model
from agents.evaluate import run_episode
from agents.policy import Policy
from agents.residual import load_residual
from dexenvs.executor import executor
from dexenvs.scenarios import Scenario
from dexenvs.trajectory import DatasetWriter, Episode, Recorder, demo_names, make_env, open_dataset, read_episode
from generators.augment import graft_grasp, slip_rejection, source_for


class _RolloutRunner:
    """One worker: a recorded env and the policy (base, or base + residual)."""

    def __init__(self, env_args: dict, ckpt: str, residual: str | None):
        policy = Policy(load_model(ckpt))
        self.max_steps = gym.spec(env_args["env_name"]).max_episode_steps
        self.env = Recorder(make_env(env_args, "state_dict"))  # the policy reads dict observations
        self.policy = load_residual(residual, base=policy) if residual else policy

    def run(self, job: tuple[int, str, int, int]) -> tuple[Episode | None, dict]:
        attempt, scenario, reset_seed, iteration = job
        r = run_episode(self.env, self.policy, reset_seed, scenario=scenario, max_steps=self.max_steps)
        ep = self.env.episode(dict(generator="rollout", flywheel_iteration=iteration, attempt=attempt)) \
            if r["success"] else None
        return ep, dict(attempt=attempt, scenario=scenario, success=r["success"], steps=r["steps"])

    def close(self) -> None:
        self.env.close()


@dataclass
class RolloutResult:
    path: str
    attempts: int
    successes: int
    """kept: successful, and within the slip limit"""
    task_successes: int
    rejected_slip: int
    max_slip: float
    median_slip: float | None
    success_rate: float
    seconds: float
    per_object: dict
    policy: str = "base"


def collect_rollouts(out: Path, env_args: dict, ckpt: Path, residual: Path | None, scenarios: list[str], num: int,
                     max_attempts: int, iteration: int, seed: int, workers: int, progress: bool, task: str,
                     max_slip: float, policy: str) -> RolloutResult:
    """Rolls the policy out over `scenarios` in turn until `num` successes (or `max_attempts`); writes the successes
    whose object slid at most `max_slip` in the hand (`hold_slip`; 0: every success)."""
    for p in (out, out.with_name(out.name + ".episodes")):  # a rollout stage restarts from its beginning
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    writer = DatasetWriter(out, env_args)
    records: list[dict] = []
    bar = tqdm(total=num, desc=f"rollouts {iteration}", unit="demo", disable=not progress)

    def jobs():
        for a in range(max_attempts):
            rs = int(np.random.SeedSequence([seed, iteration, a]).generate_state(1)[0] & 0x7FFFFFFF)
            yield a, scenarios[a % len(scenarios)], rs, iteration

    t = time.perf_counter()
    results = executor(workers).map(_RolloutRunner, (env_args, str(ckpt), str(residual) if residual else None),
                                    _RolloutRunner.run, jobs())
    for ep, rec in results:
        if ep is not None:
            rec["slip"], why = slip_rejection(ep, task, max_slip)
            if why:
                ep, rec["rejected"] = None, why
        records.append(rec)
        if ep is not None:
            writer.add(ep)
            bar.update(1)
        bar.set_postfix(attempts=len(records), rate=f"{len(writer) / len(records):.0%}")
        if len(writer) >= num:
            results.close()
            break
    bar.close()
    per_obj: dict[str, list[tuple[bool, bool]]] = {}
    for r in records:
        per_obj.setdefault(Scenario.parse(r["scenario"]).object_id, []).append((r["success"], "rejected" in r))
    slips = [r["slip"] for r in records if r.get("slip") is not None]
    result = RolloutResult(
        path=str(out), attempts=len(records), successes=len(writer), task_successes=sum(r["success"] for r in records),
        rejected_slip=sum("rejected" in r for r in records), max_slip=max_slip,
        median_slip=round(float(np.median(slips)), 4) if slips else None,
        success_rate=round(len(writer) / max(1, len(records)), 4), seconds=round(time.perf_counter() - t, 1),
        per_object={o: dict(attempts=len(v), successes=sum(ok for ok, _ in v), kept=sum(ok and not rej for ok, rej in v))
                    for o, v in sorted(per_obj.items())}, policy=policy)
    writer.attrs["generation"] = json.dumps({k: v for k, v in result.__dict__.items() if k != "policy"})
    writer.close()
    return result


def read_episodes(path: Path) -> tuple[list[Episode], dict]:
    """Every demo of a dataset, and its env args."""
    with open_dataset(path) as f:
        return [read_episode(f["data"][n]) for n in demo_names(f)], json.loads(f["data"].attrs["env_args"])


def write_sources(out: Path, env_args: dict, episodes) -> Path:
    """`out` rebuilt whole from `episodes`: an A_EP source derived from other files is a pure function of them."""
    out.unlink(missing_ok=True)
    shutil.rmtree(out.with_name(out.name + ".episodes"), ignore_errors=True)
    with DatasetWriter(out, env_args) as writer:
        for ep in episodes:
            writer.add(ep)
    return out


def graft_rollouts(rollouts: Path, seed_path: Path, task: str, out: Path) -> Path:
    """`out`: each rollout's grasp on its category seed's motion (`augment.graft_grasp`), in the rollouts' order. A
    source for A_EP only: its demos keep the seed's observations and states, which the new actions no longer match."""
    seeds, _ = read_episodes(seed_path)
    eps, env_args = read_episodes(rollouts)
    seed_objects = [Scenario.parse(s.scenario).object_id for s in seeds]
    return write_sources(out, env_args, (
        graft_grasp(seeds[source_for(Scenario.parse(ep.scenario).object_id, seed_objects, 0)], ep, task,
                    env_args["robot"]) for ep in eps))


def cover_objects(rollouts: Path, seed_path: Path, objects: list[str], out: Path) -> tuple[Path, list[str]]:
    """`out`: the rollouts' demos, then for each of `objects` that no rollout holds its category seed's demo relabelled
    onto it (A_EP then carries the seed onto that object, as replay_only does). Returns it and those objects."""
    seeds, _ = read_episodes(seed_path)
    eps, env_args = read_episodes(rollouts)
    held = {Scenario.parse(ep.scenario).object_id for ep in eps}
    missing = [o for o in objects if o not in held]
    seed_objects = [Scenario.parse(s.scenario).object_id for s in seeds]

    def relabelled(o: str) -> Episode:
        s = seeds[source_for(o, seed_objects, 0)]
        sc = Scenario.parse(s.scenario)
        return replace(s, scenario=str(Scenario(o, sc.env_id, sc.pose_id)),
                       provenance=dict(generator="cover", seed=s.provenance, seed_scenario=s.scenario))
    return write_sources(out, env_args, [*eps, *map(relabelled, missing)]), missing
