"""The flywheel's loop (DexFlyWheel sec. 4-5): per iteration, data -> base -> residual -> evaluation -> rollouts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dexenvs.executor import configure
from dexenvs.results import provenance, to_jsonable
from generators.flywheel.config import RUNTIME, FlywheelConfig, resolve, run_name
from generators.flywheel.report import write_report
from generators.flywheel.rollouts import RolloutResult
from generators.flywheel.stages import (DataResult, EvalResult, ResidualResult, Run, TrainResult, data_title,
                                        evaluate_policies, film, make_data, residual_stage, residual_title, roll_out,
                                        rollout_policy, rolls_out, seed_demos, train_base)
from generators.flywheel.state import StageLog


@dataclass
class Iteration:
    iteration: int
    objects: list[str]
    data: DataResult
    train: TrainResult
    residual: ResidualResult | None
    eval: EvalResult
    rollout: RolloutResult | None


def run_flywheel(cfg: FlywheelConfig) -> dict:
    """Runs (or resumes) a flywheel and writes its report; returns the report."""
    configure(cfg.ray, cfg.ray_address)
    cfg = resolve(cfg)
    out = cfg.out or Path("runs/flywheel") / run_name(cfg)
    settings = {k: v for k, v in to_jsonable(cfg).items() if k not in RUNTIME}
    run = Run(cfg, out, StageLog(out, settings, cfg.restart))
    try:
        run.log.run("0.seed", "seed demos (scripted expert)", lambda: seed_demos(run), dict)
        run.read_seeds()
        print(f"[flywheel] {cfg.task} ({cfg.variant}), {cfg.iters} iterations in {out}; objects per iteration: "
              + ", ".join(f"O_{i}={len(run.objects[i])}" for i in range(1, cfg.iters + 1)))
        iterations: list[Iteration] = []
        rollout = None
        for i in range(1, cfg.iters + 1):
            tag = f"iteration {i}/{cfg.iters}"
            data = run.log.run(f"{i}.data", f"{tag}: {data_title(run, i, rollout)}",
                               lambda: make_data(run, i, rollout), lambda d: DataResult(**d))
            base = run.log.run(f"{i}.train", f"{tag}: train the {cfg.base.algo} base policy on D_{i}",
                               lambda: train_base(run, i, data), lambda d: TrainResult(**d))
            residual = run.log.run(f"{i}.residual", f"{tag}: {residual_title(run, i)}",
                                   lambda: residual_stage(run, i), lambda d: ResidualResult(**d)) \
                if run.uses_residual else None
            evals = run.log.run(f"{i}.eval", f"{tag}: evaluate on T_O^{i} and T_OEP",
                                lambda: evaluate_policies(run, i, residual), EvalResult.load)
            rollout = None
            if rolls_out(run, i):
                who = rollout_policy(evals, residual)
                rollout = run.log.run(f"{i}.rollout", f"{tag}: roll out the {who} policy on O_{i + 1} "
                                      f"({len(run.next_objects(i))} objects)",
                                      lambda: roll_out(run, i, who, residual), lambda d: RolloutResult(**d))
            iterations.append(Iteration(i, run.objects[i], data, base, residual, evals, rollout))
        filmed = run.log.run("film", "film the final policy on T_OEP scenarios (mp4 + gif)",
                             lambda: film(run, iterations[-1].residual), dict)
        stage_seconds = run.log.seconds()
        report = dict(task=cfg.task, variant=cfg.variant, out=str(out), settings=settings,
                      provenance=provenance(), iterations=to_jsonable(iterations), film=filmed, stage_seconds=stage_seconds,
                      total_stage_seconds=round(sum(stage_seconds.values()), 1))
        write_report(out, report)
        return report
    finally:
        run.log.close()
