"""Scripted-expert success per split: `python -m benchmarks.expert_success --task grasp --episodes 50`.

Episodes are seeded 0..N-1 per split and spread over two worker processes; prints a table and writes JSON under
benchmarks/results/.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym

from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, run_cli
from dexenvs.executor import executor
from dexenvs.experts import rollout
from dexenvs.rates import format_count, format_rate, rate_record, wilson_interval
from dexenvs.tasks import TaskName, get_task

SPLITS = ("train", "test_objects", "test_oep")


class ExpertRunner:
    """One worker's env and expert for one split."""

    def __init__(self, task: str, split: str):
        self.spec = get_task(task)
        self.env = gym.make(self.spec.env_id, split=split).unwrapped
        self.expert = self.spec.expert(self.env)

    def run(self, seed: int) -> tuple[str, bool]:
        options = self.spec.episode_options(seed)
        ok = bool(rollout(self.env, self.expert, seed=seed, options=options or None)["success"][0])
        return str(self.env.scenarios[0]) + (f"|giver={options['giver']}" if options else ""), ok

    def close(self) -> None:
        self.env.close()


@dataclass
class Args(ResultArgs):
    task: TaskName = "grasp"
    episodes: Count = 50
    workers: Count = 2
    out: Path = RESULTS

    def outputs(self) -> list[Path]:
        return [self.out / f"expert_success_{self.task}.json"]


def main(args: Args) -> dict:
    t0 = time.perf_counter()
    res: dict = {}
    for sp in SPLITS:
        rows = list(executor(args.workers).map(ExpertRunner, (args.task, sp), ExpertRunner.run, range(args.episodes)))
        by_cat = defaultdict(list)
        for scen, ok in rows:
            by_cat[scen.split("|")[0].rsplit("_", 1)[0]].append(ok)
        k = sum(ok for _, ok in rows)
        res[sp] = dict(success=k / len(rows), successes=k, episodes=len(rows), interval=wilson_interval(k, len(rows)),
                       per_category={c: rate_record(sum(v), len(v)) for c, v in sorted(by_cat.items())},
                       failures=[s for s, ok in rows if not ok])
    print(f"{args.task} expert, {args.episodes} episodes per split ({time.perf_counter() - t0:.0f} s)")
    print(f"{'split':14s} {'success [95% interval] (n)':>30s}  per category")
    for sp in SPLITS:
        cats = ", ".join(f"{c} {format_count(v['successes'], v['episodes'])}"
                         for c, v in res[sp]["per_category"].items())
        print(f"{sp:14s} {format_rate(res[sp]['successes'], res[sp]['episodes']):>30s}  {cats}")
    save_result(args.out / f"expert_success_{args.task}.json", res, args)
    return res


if __name__ == "__main__":
    run_cli(main, Args)
