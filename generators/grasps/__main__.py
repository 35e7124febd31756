"""`python -m generators.grasps --object cube_00 --num 1000 --workers 2`: build (or resume) one object's grasp set."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from dexenvs.cli import Count, NonNegative, Positive, check_output, run_cli
from generators.grasps.build import GraspConfig, build_grasp_set, check_object


@dataclass
class Args:
    object: str = "cube_00"
    """an in-hand sized library object (cube_*, cylinder_*, ball_*)"""
    num: Count = 1000
    """validated grasps to keep"""
    out: Path = Path("runs/grasps")
    workers: Count = 2
    seeds: Count = 32
    round_size: Count = 64
    squeeze: Positive = 0.003
    seed: NonNegative = 0
    resume: bool = False
    """continue a set whose final file exists (an interrupted build resumes without it)"""
    overwrite: bool = False
    """start over, discarding an existing set and its rounds"""

    def config(self) -> GraspConfig:
        return GraspConfig(object_id=self.object, num=self.num, out=self.out, workers=self.workers, seeds=self.seeds,
                           round_size=self.round_size, squeeze=self.squeeze, seed=self.seed)

    def check(self) -> None:
        check_object(self.object)
        check_output("out", self.config().paths()[0], self)


def main(args: Args) -> dict:
    cfg = args.config()
    final, parts, _ = cfg.paths()
    if args.overwrite:
        shutil.rmtree(parts, ignore_errors=True)
    report = build_grasp_set(cfg)
    print(json.dumps({k: report[k] for k in ("grasps", "acceptance", "rates", "coverage_so3", "penetration_mm", "hold")},
                     indent=1))
    print(f"[grasps] wrote {final}")
    return report


if __name__ == "__main__":
    run_cli(main, Args)
