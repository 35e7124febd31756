"""The flywheel's settings: one nested config (the base's training recipe, the residual's and the evaluation's
declared once, in their own modules), the `--quick` preset, and `resolve`, which fills what was not given from the
task's preset (`TaskSpec.flywheel`) so that a run's settings are concrete before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal

from agents.residual.train import ResidualConfig
from agents.train import TrainConfig
from dexenvs.cli import AtLeast, Count, NonNegative, UsageError, validate
from dexenvs.scenarios import Scenario
from dexenvs.tasks import TaskName, get_task

Variant = Literal["flywheel", "replay_only", "no_residual", "no_aep"]
CARRY_ROLLOUTS = ("flywheel", "no_residual")  # the variants whose D_i (i > 1) is A_EP of the last rollouts
RESIDUAL = ("flywheel", "no_aep")  # the variants that train a residual


@dataclass
class DataConfig:
    """What D_i holds per iteration (the last value repeats for more iterations)."""

    trajectories: tuple[Count, ...] = (20, 100, 500)
    """|D_i|"""
    envs: tuple[NonNegative, ...] = (3, 8, 0)
    """C_aug^i: environments A_EP draws from, the seed's and the next train ones (0: all). A narrow start puts D_1's
    demos where the rollouts happen, so the first base is strong there"""
    poses: tuple[NonNegative, ...] = (5, 10, 0)
    """C_aug^i: train poses nearest the seed's (0: all)"""
    rollouts: Count = 30
    """successful rollouts kept per iteration (D_O^i), spread over the next iteration's objects"""
    cover: bool | None = None
    """D_i (i > 1) also carries the category seed onto each object of O_i that no kept rollout holds, so the data
    spans all of O_i (variants flywheel and no_residual). Default: the task's preset"""
    max_slip: Annotated[float, AtLeast(0)] | None = None
    """keep a successful rollout only if its object slid at most this far (m) in the hand while carried (0: every
    success). Default: the task's preset"""


@dataclass
class EvalConfig:
    seeds: Count = 5
    episodes: Count = 8
    """per seed and test set: 5 x 8 covers T_OEP's 40 configurations once"""
    t_oep_rounds: Count = 3
    """T_OEP is played this many times over (new seeds each round): one pass over its 40 configurations is too few
    episodes to tell a flywheel from its baseline"""


@dataclass
class FlywheelConfig:
    task: TaskName = "handover"
    iters: Count = 3
    variant: Variant = "flywheel"
    """replay_only: D_i = A_EP of the seeds onto O_i, no policy in the loop (DexMimicGen); no_residual: the base policy
    rolls out; no_aep: the rollouts themselves are D_(i+1)"""
    quick: bool = False
    """a small run end to end in minutes (QUICK, with the task's quick steps and a drawn seed)"""
    seed_scenarios: tuple[str, ...] | None = None
    """one scripted seed demo per scenario, object|environment|pose; `draw`: one seed drawn from the train split
    (DexFlyWheel's single demo). Default: the task's preset, one per category. T_O^i is evaluated in the first one's
    environment and pose"""
    train_steps: tuple[Count, ...] | None = None
    """base-policy training steps per iteration (default: the task's preset). Raised on an existing run, the first
    trained base it raises trains on from its checkpoint and the stages after it rerun"""
    data: DataConfig = field(default_factory=DataConfig)
    base: TrainConfig = field(default_factory=TrainConfig)
    residual: ResidualConfig = field(default_factory=ResidualConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    out: Path | None = None
    """default runs/flywheel/<task>[_<variant>][_<what differs from the preset>][_quick]"""
    workers: Count = 2
    ray: bool = False
    """run rollouts, A_EP and evaluation on a local Ray instead of this machine's process pool"""
    ray_address: str | None = None
    """join the Ray cluster at host:port (as `ray start --head` prints) instead"""
    device: str = "auto"
    """where the base policy trains (auto: CUDA when there is one); the simulator, the residual and evaluation stay on
    the CPU"""
    seed: NonNegative = 0
    restart: bool = False
    """discard an existing run in `out` and start over"""
    progress: bool = True

    def check(self) -> None:
        check_settings(self)


# the quick preset: every E and P from i = 1, the fast BC base, a short residual, 2 x 2 evaluation episodes, every
# successful rollout kept, and the task's cover, so D_2 spans O_2 even where the minutes-trained base grasps few objects
QUICK_DATA = dict(trajectories=(20, 30, 40), rollouts=6, envs=(0,), poses=(0,), max_slip=0.0)
QUICK_RESIDUAL = dict(timesteps=1500, val_episodes=4)
QUICK_EVAL = EvalConfig(seeds=2, episodes=2, t_oep_rounds=1)
QUICK_ALGO = "bc"

# what the run's directory and state do not depend on
RUNTIME = ("out", "workers", "ray", "ray_address", "device", "restart", "progress")


def per_iter(values: tuple[int, ...], i: int) -> int:
    return values[min(i, len(values)) - 1]


def given_seeds(cfg: FlywheelConfig) -> tuple[str, ...] | None:
    """`seed_scenarios` as given, `draw` (one seed drawn from the train split) as (); None when not given."""
    if cfg.seed_scenarios is None or "draw" not in cfg.seed_scenarios:
        return cfg.seed_scenarios
    if len(cfg.seed_scenarios) > 1:
        raise UsageError("seed_scenarios", cfg.seed_scenarios, "draw stands alone (one seed drawn from the train "
                                                               "split)")
    return ()


def check_settings(cfg: FlywheelConfig) -> None:
    """Settings that cannot run, refused by name before anything runs."""
    if cfg.data.cover and cfg.variant not in CARRY_ROLLOUTS:
        raise UsageError("data.cover", True, f"fills in the objects A_EP(rollouts) misses: it applies to the variants "
                                             f"{' and '.join(CARRY_ROLLOUTS)}, not {cfg.variant}")
    space = get_task(cfg.task).scenario_space()
    for sc in given_seeds(cfg) or ():
        try:
            s = space.validate(Scenario.parse(sc))
        except ValueError as e:
            raise UsageError("seed_scenarios", sc, str(e)) from None
        if not space.contains("train", s):
            # a seed from a held-out object, environment or pose would leak the test split into training
            raise UsageError("seed_scenarios", sc, f"seeds come from the train split: objects {space.train_objects}, "
                                                   f"environments {space.train_envs}, poses 0..{len(space.train_poses) - 1}")


def resolve(cfg: FlywheelConfig) -> FlywheelConfig:
    """`cfg` with every default the task decides filled in from its preset, and the quick preset applied."""
    validate(cfg)
    preset = get_task(cfg.task).flywheel
    seeds = given_seeds(cfg)
    data, base, residual, ev = cfg.data, cfg.base, cfg.residual, cfg.eval
    steps = cfg.train_steps
    if cfg.quick:
        data = replace(data, **QUICK_DATA)
        base = replace(base, algo=QUICK_ALGO)
        residual = replace(residual, **QUICK_RESIDUAL)
        ev, steps, seeds = QUICK_EVAL, preset.quick_train_steps, () if seeds is None else seeds
    cover = data.cover if data.cover is not None else (cfg.variant in CARRY_ROLLOUTS and preset.cover)
    data = replace(data, cover=cover, max_slip=preset.max_slip if data.max_slip is None else data.max_slip)
    return replace(cfg, seed_scenarios=preset.seed_scenarios if seeds is None else tuple(seeds),
                   train_steps=tuple(steps or preset.train_steps), data=data, base=base, residual=residual, eval=ev)


def run_name(cfg: FlywheelConfig) -> str:
    """The default run directory's name: the task, the variant, and what sets the run apart from the task's preset
    (its seeds, cover, U-Net widths, bf16 training, the quick preset)."""
    preset = get_task(cfg.task).flywheel
    seeds = given_seeds(cfg)
    parts = [cfg.task] + ([] if cfg.variant == "flywheel" else [cfg.variant])
    if seeds is not None and tuple(seeds) != (() if cfg.quick else preset.seed_scenarios):
        parts.append(f"{len(seeds)}seeds" if seeds else "drawnseed")
    if cfg.data.cover is not None and cfg.data.cover != (cfg.variant in CARRY_ROLLOUTS and preset.cover):
        parts.append("cover" if cfg.data.cover else "nocover")
    if cfg.base.down_dims is not None:
        parts.append("unet" + "-".join(map(str, cfg.base.down_dims)))
    if cfg.base.precision != "fp32":
        parts.append(cfg.base.precision)
    if cfg.quick:
        parts.append("quick")
    return "_".join(parts)
