"""Grasp-set generation rate: `python -m benchmarks.grasps --objects cube_00 cylinder_00 --num 40`.

Builds each object's set from scratch (into a scratch folder) with `generators.grasps` on this machine's workers and
prints candidates/s, validated grasps/s, the acceptance at each stage, SO(3) coverage and hold statistics next to the
published anchors (ANCHORS.md, "Grasp sets"): DexGraspNet under 3 validated grasps/s on a GPU, BODex 49/s on an RTX 3090.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, run_cli
from generators.grasps.build import GraspConfig, build_grasp_set, check_object

ANCHORS = {"DexGraspNet (GPU)": 3.0, "BODex (RTX 3090)": 49.0}
AIM = 50.0


@dataclass
class Args(ResultArgs):
    objects: tuple[str, ...] = ("cube_00", "cylinder_00")
    num: Count = 40
    """validated grasps per object"""
    workers: Count = 2
    seeds: Count = 16
    round_size: Count = 32
    out: Path = RESULTS

    def outputs(self) -> list[Path]:
        return [self.out / "grasps.json"]

    def check(self) -> None:
        for o in self.objects:  # a wrong object is the first thing to say, before an existing output
            check_object(o)
        super().check()


def main(args: Args) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="grasp-bench-"))
    rows = {}
    try:
        for o in args.objects:
            cfg = GraspConfig(object_id=o, num=args.num, out=scratch, workers=args.workers, seeds=args.seeds,
                              round_size=args.round_size)
            rows[o] = build_grasp_set(cfg, progress=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    wall = sum(r["rates"]["wall_s"] for r in rows.values())
    validated = sum(r["rrt"]["validated"] for r in rows.values())
    candidates = sum(r["rrt"]["net_force"] for r in rows.values())
    total = dict(validated_per_s=validated / wall, candidates_per_s=candidates / wall, wall_s=wall)
    print(f"grasp sets on {args.workers} CPU workers, {args.num} validated grasps per object (RRT rounds only)")
    print(f"{'object':12s} {'cand/s':>7s} {'valid/s':>8s} {'valid/cand':>10s} {'SO(3) bins':>10s} {'pen mm':>7s} "
          f"{'move mm':>8s}")
    for o, r in rows.items():
        print(f"{o:12s} {r['rates']['candidates_per_s']:7.2f} {r['rates']['validated_per_s']:8.2f} "
              f"{r['acceptance']['validated']:10.1%} {r['coverage_so3']:10.1%} {r['penetration_mm']['mean']:7.2f} "
              f"{r['hold']['move_mm_mean']:8.2f}")
    print(f"{'all':12s} {total['candidates_per_s']:7.2f} {total['validated_per_s']:8.2f}   "
          f"(aim {AIM:g}/s; " + ", ".join(f"{k} {v:g}/s" for k, v in ANCHORS.items())
          + f"; ours / BODex = {total['validated_per_s'] / ANCHORS['BODex (RTX 3090)']:.3f})")
    res = dict(objects=rows, total=total, anchors=ANCHORS, aim=AIM)
    save_result(args.out / "grasps.json", res, args)
    return res


if __name__ == "__main__":
    run_cli(main, Args)
