"""`python -m generators.augment --task grasp --num 200 [--source demos/grasp/seed.hdf5] [--split train]
[--objects category] [--workers 2] [--resume]`: A_EP from seed demos (see generators.augment)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import tyro

from dexenvs.tasks import TaskName
from generators.augment.generate import AugmentConfig, generate


@dataclass(kw_only=True)
class Args(AugmentConfig):
    task: TaskName = "grasp"
    num: int = 100
    """successful demos to keep"""
    source: Path | None = None
    """default: demos/<task>/seed.hdf5 (python -m generators.seed --task <task>)"""
    demo: str | None = None
    """which demo of the source file to carry (default: all of them, one drawn per attempt)"""
    out: Path | None = None
    """default: demos/<task>/aep.hdf5"""
    workers: int = 2
    seed: int = 0
    resume: bool = False
    iteration: int = 0
    """flywheel iteration recorded in each demo's provenance"""
    progress: bool = True


def main(args: Args) -> dict:
    cfg = AugmentConfig(**{f.name: getattr(args, f.name) for f in fields(AugmentConfig)})
    return generate(args.task, args.source or Path("demos") / args.task / "seed.hdf5",
                    args.out or Path("demos") / args.task / "aep.hdf5", args.num, cfg, args.demo, args.workers,
                    args.seed, args.resume, args.iteration, args.progress)


if __name__ == "__main__":
    main(tyro.cli(Args))
