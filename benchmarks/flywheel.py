"""The flywheel benchmark: a full default run per task (3 iterations) and the replay-only baseline (DexMimicGen: A_EP
from the seed), side by side, with wall time per stage.

    python -m benchmarks.flywheel [--tasks grasp pour lift handover] [--variants flywheel replay_only] [--quick]
        [--seed-scenarios SCENARIO ... | draw]   (one task; default: the task's own, one per category)
        [--rollout-motion executed|seed] [--cover True|False]

Each run is `python -m generators.flywheel` in its own directory under runs/flywheel/ (resumable: rerunning continues
interrupted runs). Copies each run's report.md / report.png / report.json to benchmarks/results/flywheel/<task>_<variant>/
and writes benchmarks/results/flywheel.json plus a summary table against DexFlyWheel's Table 1/2 figures.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import tyro

from dexenvs.experts import TaskName
from generators import flywheel

Variant = Literal["flywheel", "replay_only", "no_residual", "no_aep"]

RESULTS = Path(__file__).parent / "results"
PAPER_T_OEP = {"grasp": (15.0, 58.0, 90.0), "pour": (36.1, 55.6, 85.8), "lift": (13.9, 44.4, 79.4),
               "handover": (0.8, 17.5, 72.5)}  # DexFlyWheel Table 1, SR in T_OEP per iteration (%)
PAPER_REPLAY = {"grasp": 50.3, "pour": 44.4, "lift": 43.7, "handover": 42.5}  # Table 2, DexMimicGen (Enhanced)


@dataclass
class Args:
    tasks: list[TaskName] = field(default_factory=lambda: ["grasp", "pour", "lift", "handover"])
    variants: list[Variant] = field(default_factory=lambda: ["flywheel", "replay_only"])
    quick: bool = False
    iters: int = 3
    seed_scenarios: tuple[str, ...] | None = None
    """start from one seed per scenario (generators.flywheel --seed-scenarios; default: SEED_SCENARIOS[task]); needs a
    single --tasks"""
    seed_share: float = 0.0
    """share of D_i (i > 1) carried from the seeds (generators.flywheel --seed-share); flywheel and no_residual only"""
    rollout_motion: Literal["executed", "seed"] | None = None
    """what A_EP carries from each rollout (generators.flywheel --rollout-motion) in the variants that carry rollouts
    (flywheel and no_residual); default: the grafted grasp (`seed`)"""
    cover: bool | None = None
    """carry the seed onto the objects no kept rollout holds (generators.flywheel --cover; default: COVER[task]);
    flywheel and no_residual only"""


def _summary(rep: dict) -> dict:
    return dict(task=rep["task"], variant=rep["variant"], minutes=round(rep["total_stage_seconds"] / 60, 1),
                t_oep=[it["eval"].get("T_OEP/combined", it["eval"]["T_OEP/base"])["mean"] for it in rep["iterations"]],
                t_oep_base=[it["eval"]["T_OEP/base"]["mean"] for it in rep["iterations"]],
                t_o=[(it["eval"]["T_O/base"]["mean"], it["eval"].get("T_O/combined", {}).get("mean"))
                     for it in rep["iterations"]],
                stage_seconds=rep["stage_seconds"])


def _table(runs: dict) -> str:
    lines = ["| run (task_variant[_setting]) | minutes | SR T_OEP per iteration, base → combined (ours) "
             "| DexFlyWheel T_OEP | replay baseline (paper) |", "|---|---|---|---|---|"]
    for name, r in runs.items():
        ours = " / ".join(f"{b:.1%}" + (f" → {c:.1%}" if r["variant"] in ("flywheel", "no_aep") else "")
                          for b, c in zip(r["t_oep_base"], r["t_oep"]))
        lines.append(f"| {name} | {r['minutes']} | {ours} | "
                     f"{' / '.join(f'{x}%' for x in PAPER_T_OEP[r['task']])} | {PAPER_REPLAY[r['task']]}% |")
    return "\n".join(lines)


def main(args: Args) -> dict:
    """Runs one after another and rewrites the summary after each, so an interrupted benchmark keeps what it finished
    (and rerunning it resumes the unfinished run)."""
    summary = RESULTS / ("flywheel_quick.json" if args.quick else "flywheel.json")
    if args.seed_scenarios and len(args.tasks) != 1:
        raise ValueError(f"--seed-scenarios are one task's scenarios; pass a single --tasks, not {args.tasks}")
    runs: dict = json.loads(summary.read_text())["runs"] if summary.exists() else {}
    for task in args.tasks:
        for variant in args.variants:
            loop = variant in flywheel.CARRY_ROLLOUTS
            run = flywheel.Args(task=task, variant=variant, quick=args.quick, iters=args.iters,
                                seed_scenarios=args.seed_scenarios, seed_share=args.seed_share if loop else 0.0,
                                rollout_motion=args.rollout_motion if loop else None,
                                cover=args.cover if loop else None)
            rep = flywheel.main(run)
            name = f"{task}_{variant}" + flywheel.run_suffix(run)
            dst = RESULTS / "flywheel" / name
            dst.mkdir(parents=True, exist_ok=True)
            for f in ("report.md", "report.png", "report.json"):
                shutil.copy(Path(rep["out"]) / f, dst / f)
            runs[name] = _summary(rep)
            summary.write_text(json.dumps(dict(runs=runs, table=_table(runs)), indent=1))
    print(_table(runs))
    return runs


if __name__ == "__main__":
    main(tyro.cli(Args))
