"""How clean a dataset's demos are, as a base policy will learn them: action jerk and how firmly the object is held.

    python -m benchmarks.studies.rollout_quality --datasets runs/flywheel/grasp/D1.hdf5 runs/flywheel/grasp/rollouts_1.hdf5 ...

Per dataset: demos, mean wrist-target jerk (|second difference| of the position target, mm per step^2) and
finger-target jerk (rad), and `augment.hold_slip` (the object's largest displacement in the wrist's frame while
carried): median, 90th percentile, max and the share within the flywheel's slip limit for the task (its spec's
preset; none where it sets no limit). Replayed seed demos
hold the object still and move smoothly; a weak policy's "successful" rollouts often do neither. Writes
benchmarks/results/rollout_quality.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import ExistingPath, NewPath, run_cli
from dexenvs.tasks import task_of_env
from dexenvs.trajectory import demo_names, open_dataset, read_episode
from generators.augment import HAND_DIM, hold_slip


@dataclass
class Args(ResultArgs):
    datasets: list[ExistingPath] = field(default_factory=list)
    out: NewPath = RESULTS / "rollout_quality.json"


def quality(path: Path) -> dict:
    with open_dataset(path) as f:
        spec = task_of_env(json.loads(f["data"].attrs["env_args"])["env_name"])
        task = spec.name
        eps = [read_episode(f["data"][n]) for n in demo_names(f)]
    jerk, finger, slip = [], [], []
    for ep in eps:
        a = ep.actions.reshape(len(ep), -1, HAND_DIM)
        jerk.append(np.linalg.norm(np.diff(a[..., :3], 2, axis=0), axis=-1).mean() * 1000)
        finger.append(np.abs(np.diff(a[..., 9:], 2, axis=0)).mean())
        s = hold_slip(ep, task)
        if s is not None:
            slip.append(s * 1000)
    limit = spec.flywheel.max_slip * 1000
    out = dict(task=task, demos=len(eps), wrist_jerk_mm=round(float(np.mean(jerk)), 2),
               finger_jerk_rad=round(float(np.mean(finger)), 4), slip_measured=len(slip), max_slip_mm=limit)
    if slip:
        slip = np.array(slip)
        out.update(slip_median_mm=round(float(np.median(slip)), 1), slip_p90_mm=round(float(np.percentile(slip, 90)), 1),
                   slip_max_mm=round(float(slip.max()), 1))
        if limit:
            out["within_max_slip"] = round(float(np.mean(slip <= limit)), 2)
    return out


def main(args: Args) -> dict:
    if not args.datasets:
        raise ValueError("pass one or more datasets, e.g. runs/flywheel/grasp/D1.hdf5 runs/flywheel/grasp/rollouts_1.hdf5")
    rows = {str(p): quality(p) for p in args.datasets}
    lines = ["| dataset | demos | wrist jerk (mm) | finger jerk (rad) | slip median / p90 / max (mm) | within the task's "
             "--max-slip |", "|---|---|---|---|---|---|"]
    for p, r in rows.items():
        slip = f"{r['slip_median_mm']} / {r['slip_p90_mm']} / {r['slip_max_mm']}" if "slip_median_mm" in r else "n/a"
        within = r.get("within_max_slip", "n/a") if r["max_slip_mm"] else "no limit"
        lines.append(f"| {p} | {r['demos']} | {r['wrist_jerk_mm']} | {r['finger_jerk_rad']} | {slip} | {within} |")
    table = "\n".join(lines)
    save_result(args.out, dict(datasets=rows, table=table), args)
    print(table)
    return rows


if __name__ == "__main__":
    run_cli(main, Args)
