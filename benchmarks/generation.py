"""A_EP generation success and successful demos per hour: `python -m benchmarks.generation [--task all]
[--attempts 200] [--objects category all]`.

For each task: writes the scripted seed demo, then runs `generators.augment` for exactly `--attempts` attempts on
`--workers` processes (wall time includes starting them), once per object mode. Prints one table with the anchors
(MimicGen 20-30% on RoboCasa, DexMimicGen 29-76%, DexFlyWheel's A_EP 89.8%) and writes
benchmarks/results/generation_<task>.json.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, run_cli
from dexenvs.rates import format_rate
from dexenvs.tasks import TaskName, task_names
from generators.augment import AugmentConfig, generate
from generators.seed import record_seeds


@dataclass
class Args(ResultArgs):
    task: TaskName | Literal["all"] = "all"
    attempts: Count = 200
    objects: tuple[Literal["seed", "category", "all"], ...] = ("category", "all")
    workers: Count = 2
    out: Path = RESULTS

    def tasks(self) -> list[str]:
        return task_names() if self.task == "all" else [self.task]

    def outputs(self) -> list[Path]:
        return [self.out / f"generation_{task}.json" for task in self.tasks()]


def main(args: Args) -> dict:
    tasks = args.tasks()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            src = record_seeds(task, Path(tmp) / task / "seed.hdf5")
            results[task] = {}
            for mode in args.objects:
                s = generate(task, src, Path(tmp) / task / f"aep_{mode}.hdf5", args.attempts,
                             AugmentConfig(objects=mode, max_attempts=args.attempts), workers=args.workers)
                results[task][mode] = s
            args.out.mkdir(parents=True, exist_ok=True)
            save_result(args.out / f"generation_{task}.json", results[task], args)
    print(f"\nA_EP generation, {args.attempts} attempts per row, {args.workers} workers "
          f"(anchors: MimicGen 20-30%, DexMimicGen 29-76%, DexFlyWheel A_EP 89.8%)")
    print(f"{'task':9s} {'objects':9s} {'success [95% interval] (n)':>30s} {'demos/h':>8s} {'O':>3s} {'E':>3s} {'P':>3s} {'OxExP':>6s}"
          f"  objects below 50%")
    for task, modes in results.items():
        for mode, s in modes.items():
            c = s["coverage_successes"]
            weak = [o for o, v in s["per_object"].items() if v["success_rate"] < 0.5]
            print(f"{task:9s} {mode:9s} {format_rate(s['successes'], s['attempts']):>30s} {s['demos_per_hour']:8.0f} {c['objects']:3d} "
                  f"{c['environments']:3d} {c['poses']:3d} {c['scenarios']:6d}  {', '.join(weak) or '-'}")
    return results


if __name__ == "__main__":
    run_cli(main, Args)
