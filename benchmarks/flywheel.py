"""The headline comparison: the flywheel against the replay-only baseline (DexMimicGen: A_EP of the seeds onto each
iteration's objects), per task, with the same code, seeds, training steps and evaluation episodes, next to
DexFlyWheel's published figures.

    python -m benchmarks.flywheel [--tasks grasp pour lift handover] [--variants flywheel replay_only] [--quick]

Each run is `generators.flywheel` with the task's preset in its own directory under `--runs` (resumable: rerunning
continues an interrupted run, and a finished one is only re-read). Each run's report.md / .png / .json goes to
benchmarks/results/flywheel/<run>/ as soon as it finishes, and benchmarks/results/flywheel.json (or flywheel_quick.json)
holds the table: T_OEP per iteration, every figure with its episodes and 95% interval, and the commit of each run.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import RESULTS, save_result
from dexenvs.cli import Count, run_cli
from dexenvs.rates import compare, format_rate
from dexenvs.tasks import get_task, task_names
from generators.flywheel import FlywheelConfig, run_flywheel, run_name
from generators.flywheel.config import Variant


@dataclass
class Args:
    tasks: list[str] = field(default_factory=task_names)
    variants: list[Variant] = field(default_factory=lambda: ["flywheel", "replay_only"])
    quick: bool = False
    iters: Count = 3
    runs: Path = Path("runs/flywheel")
    """where the runs are made"""
    results: Path = RESULTS
    """flywheel.json there gathers every run's figures; a run already in it is resumed, not redone"""
    workers: Count = 2

    def check(self) -> None:
        for task in self.tasks:
            get_task(task)


def _final(it: dict) -> dict:
    """An iteration's T_OEP figure of the policy the run hands on: combined where a residual was trained."""
    f = it["eval"]["figures"]
    return f.get("T_OEP/combined", f["T_OEP/base"])


def summary_of(rep: dict) -> dict:
    return dict(task=rep["task"], variant=rep["variant"], commit=rep["provenance"]["commit"],
                minutes=round(rep["total_stage_seconds"] / 60, 1),
                t_oep=[dict(successes=_final(it)["successes"], episodes=_final(it)["episodes"],
                            interval=_final(it)["interval"]) for it in rep["iterations"]],
                t_oep_base=[dict(successes=it["eval"]["figures"]["T_OEP/base"]["successes"],
                                 episodes=it["eval"]["figures"]["T_OEP/base"]["episodes"]) for it in rep["iterations"]])


def table(runs: dict) -> str:
    lines = ["| task | variant | T_OEP i = 1 | i = 2 | i = 3 | last vs replay_only | minutes | commit | DexFlyWheel T_OEP "
             "| paper's replay |", "|---|---|---|---|---|---|---|---|---|---|"]
    replay = {r["task"]: r["t_oep"][-1] for r in runs.values() if r["variant"] == "replay_only"}
    for name, r in sorted(runs.items(), key=lambda kv: (kv[1]["task"], kv[1]["variant"] != "flywheel")):
        spec = get_task(r["task"])
        paper = " / ".join(f"{x}%" for x in spec.reference_t_oep) if spec.reference_t_oep else "-"
        paper_replay = f"{spec.reference_replay}%" if spec.reference_replay is not None else "-"
        cells = [format_rate(f["successes"], f["episodes"]) for f in r["t_oep"]]
        last, base = r["t_oep"][-1], replay.get(r["task"])
        versus = "-" if base is None or r["variant"] == "replay_only" else \
            compare((last["successes"], last["episodes"]), (base["successes"], base["episodes"]))
        lines.append(f"| {r['task']} | {r['variant']} | " + " | ".join(cells) + f" | {versus} | {r['minutes']} | "
                     f"{(r['commit'] or '-')[:10]} | {paper} | {paper_replay} |")
    return "\n".join(lines)


def main(args: Args) -> dict:
    """Runs one after another and rewrites the table after each, so an interrupted benchmark keeps what it finished."""
    path = args.results / ("flywheel_quick.json" if args.quick else "flywheel.json")
    runs: dict = json.loads(path.read_text())["runs"] if path.exists() else {}
    for task in args.tasks:
        for variant in args.variants:
            cfg = FlywheelConfig(task=task, variant=variant, quick=args.quick, iters=args.iters, progress=False,
                                 workers=args.workers)
            name = run_name(cfg)
            rep = run_flywheel(FlywheelConfig(**{**cfg.__dict__, "out": args.runs / name}))
            dst = args.results / "flywheel" / name
            dst.mkdir(parents=True, exist_ok=True)
            for f in ("report.md", "report.png", "report.json"):
                shutil.copy(Path(rep["out"]) / f, dst / f)
            runs[name] = summary_of(rep)
            save_result(path, dict(runs=runs, table=table(runs)), args)
    print(table(runs))
    return runs


if __name__ == "__main__":
    run_cli(main, Args)
