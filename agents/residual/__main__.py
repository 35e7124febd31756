"""`python -m agents.residual --ckpt runs/grasp_dp/checkpoint.pt --out runs/grasp_res [--objects ... | --scenarios ...]
[--algo sac|ppo] [--timesteps 30000] [--alpha 0.1]`: trains a residual on a frozen base (agents.residual.train)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from agents.residual.train import ResidualConfig, train_residual
from dexenvs.cli import Count, ExistingPath, NonNegative, Positive, check_output, run_cli


@dataclass(kw_only=True)
class Args(ResidualConfig):
    ckpt: ExistingPath
    """the frozen base policy's checkpoint (python -m agents.train)"""
    out: Path = Path("runs/residual")
    objects: list[str] = field(default_factory=list)
    """objects to train on (default: the task's training objects); environments and poses are sampled from train"""
    scenarios: list[str] = field(default_factory=list)
    """train (and validate) on these object|environment|pose scenarios instead, e.g. where the policy will be rolled
    out: the flywheel rolls out in the seed's environment and pose, where its base is strong"""
    overwrite: bool = False
    """replace a residual already in --out"""
    workers: Count = 2
    """envs, each in its own process"""
    seed: NonNegative = 0
    minutes: Positive | None = None
    """stop (and save) after this much training time"""
    progress: bool = True

    def check(self) -> None:
        ResidualConfig.check(self)
        check_output("out", self.out / "residual.zip", self)


def main(args: Args) -> dict:
    cfg = ResidualConfig(**{f.name: getattr(args, f.name) for f in fields(ResidualConfig)})
    return train_residual(args.ckpt, args.out, cfg, args.objects, args.scenarios, args.workers, args.seed,
                          args.minutes, args.progress)


if __name__ == "__main__":
    run_cli(main, Args)
