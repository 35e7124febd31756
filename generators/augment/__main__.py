"""`python -m generators.augment --task grasp --num 200 [--source demos/grasp/seed.hdf5] [--split train]
[--objects category] [--workers 2] [--resume]`: A_EP from seed demos (see generators.augment)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from dexenvs.cli import Count, NonNegative, UsageError, check_output, run_cli
from dexenvs.executor import configure
from dexenvs.tasks import TaskName
from generators.augment.generate import AugmentConfig, generate


@dataclass(kw_only=True)
class Args(AugmentConfig):
    task: TaskName = "grasp"
    num: Count = 100
    """successful demos to keep"""
    source: Path | None = None
    """default: demos/<task>/seed.hdf5 (python -m generators.seed --task <task>)"""
    demo: str | None = None
    """which demo of the source file to carry (default: all of them, one drawn per attempt)"""
    out: Path | None = None
    """default: demos/<task>/aep.hdf5"""
    workers: Count = 2
    ray: bool = False
    """run the attempts on a local Ray instead of this machine's process pool"""
    ray_address: str | None = None
    """join the Ray cluster at host:port instead"""
    seed: NonNegative = 0
    resume: bool = False
    """continue an interrupted --out"""
    iteration: NonNegative = 0
    """flywheel iteration recorded in each demo's provenance"""
    progress: bool = True

    def paths(self) -> tuple[Path, Path]:
        return (self.source or Path("demos") / self.task / "seed.hdf5",
                self.out or Path("demos") / self.task / "aep.hdf5")

    def check(self) -> None:
        AugmentConfig.check(self)
        source, out = self.paths()
        if not source.exists():
            raise UsageError("source", source, f"no such file (record it with python -m generators.seed --task "
                                               f"{self.task})")
        check_output("out", out, self)


def main(args: Args) -> dict:
    configure(args.ray, args.ray_address)
    cfg = AugmentConfig(**{f.name: getattr(args, f.name) for f in fields(AugmentConfig)})
    source, out = args.paths()
    return generate(args.task, source, out, args.num, cfg, args.demo, args.workers, args.seed, args.resume,
                    args.iteration, args.progress)


if __name__ == "__main__":
    run_cli(main, Args)
