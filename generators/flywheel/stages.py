"""The flywheel's stages as plain functions with typed results: the seed demos, D_i, the base policy, the residual,
the evaluation and the rollouts. Each takes the `Run` (the resolved config, the task, the seeds, the run directory)
and the iteration, and returns what the loop hands to the next stage and `state.json` records."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agents import evaluate as ev
from agents.residual.train import train_residual
from agents.train import train
from dexenvs.rates import format_rate
from dexenvs.results import atomic_write
from dexenvs.scenarios import Scenario, ScenarioSpace
from dexenvs.tasks import TaskSpec, get_task
from dexenvs.trajectory import demo_names, open_dataset
from generators.augment import AugmentConfig, generate, object_pool
from generators.flywheel.config import CARRY_ROLLOUTS, RESIDUAL, FlywheelConfig, per_iter
from generators.flywheel.rollouts import RolloutResult, collect_rollouts, cover_objects, graft_rollouts
from generators.flywheel.state import StageLog
from generators.seed import record_seeds


def pool_mode(i: int) -> str:
    """Which objects iteration i reaches (`augment.object_pool`'s mode): the seeds', their categories', all."""
    return "seed" if i <= 1 else "category" if i == 2 else "all"


def iteration_objects(space: ScenarioSpace, seed_objects: list[str], i: int) -> list[str]:
    """O_1: the seeds' objects; O_2: the training objects of their categories; O_3 on: every training object."""
    return object_pool(space, "train", pool_mode(i), seed_objects)


@dataclass
class Run:
    """What every stage of one run reads: its settings (resolved), task, directory and record, and, once the seeds
    exist, their scenarios and env and the objects of every iteration."""

    cfg: FlywheelConfig
    out: Path
    log: StageLog
    spec: TaskSpec = field(init=False)
    space: ScenarioSpace = field(init=False)
    seeds: list[Scenario] = field(default_factory=list)
    env_args: dict = field(default_factory=dict)
    objects: dict[int, list[str]] = field(default_factory=dict)

    def __post_init__(self):
        self.spec = get_task(self.cfg.task)
        self.space = self.spec.scenario_space()

    @property
    def seed_path(self) -> Path:
        return self.out / "seed.hdf5"

    @property
    def uses_residual(self) -> bool:
        return self.cfg.variant in RESIDUAL

    def read_seeds(self) -> None:
        with open_dataset(self.seed_path) as f:
            self.seeds = [Scenario.parse(str(f["data"][n].attrs["scenario"])) for n in demo_names(f)]
            self.env_args = json.loads(f["data"].attrs["env_args"])
        self.objects = {i: iteration_objects(self.space, [s.object_id for s in self.seeds], i)
                        for i in range(1, self.cfg.iters + 2)}

    def next_objects(self, i: int) -> list[str]:
        """Where iteration i's residual trains and its rollouts go: O_(i+1) (the last iteration: its own O_i)."""
        return self.objects[min(i + 1, self.cfg.iters)]

    def at_seed(self, objs: list[str]) -> list[str]:
        """These objects in the first seed's environment and pose."""
        s = self.seeds[0]
        return [str(Scenario(o, s.env_id, s.pose_id)) for o in objs]


# ---------------------------------------------------------------------------------------------------------- 0. seeds
def seed_demos(run: Run) -> dict:
    return dict(path=str(record_seeds(run.cfg.task, run.seed_path, run.cfg.seed_scenarios)))


# ---------------------------------------------------------------------------------------------------------- 1. data
@dataclass
class DataResult:
    path: str
    trajectories: int
    objects: int
    environments: int
    poses: int
    configs: int
    distinct_scenarios: int
    object_ids: list[str]
    generation_success: float | None = None
    attempts: int | None = None
    fallback: str | None = None
    """"replay" where no rollout of the last iteration succeeded and D_i was carried from the seeds instead"""
    seed_objects: list[str] | None = None
    """with cover: the objects of O_i no kept rollout held, carried from their category seed"""


def coverage(path: Path) -> dict:
    """Trajectories and distinct objects, environments, poses and scenarios of a dataset."""
    with open_dataset(path) as f:
        ss = [Scenario.parse(str(f["data"][n].attrs["scenario"])) for n in demo_names(f)]
    o, e, p = ({getattr(s, a) for s in ss} for a in ("object_id", "env_id", "pose_id"))
    return dict(trajectories=len(ss), objects=len(o), environments=len(e), poses=len(p), configs=len(o) * len(e) * len(p),
                distinct_scenarios=len(set(ss)), object_ids=sorted(o))


def carry(run: Run, i: int, source: Path, mode: str, **extra) -> DataResult:
    """A_EP of `source` onto iteration i's objects (`mode`, as `augment --objects`), environments and poses -> D_i."""
    path = run.out / f"D{i}.hdf5"
    d = run.cfg.data
    s = generate(run.cfg.task, source, path, per_iter(d.trajectories, i),
                 AugmentConfig(objects=mode, envs=per_iter(d.envs, i), poses=per_iter(d.poses, i)),
                 workers=run.cfg.workers, seed=run.cfg.seed + i, iteration=i,
                 resume=path.exists() or path.with_name(path.name + ".episodes").exists(), progress=run.cfg.progress)
    return DataResult(path=str(path), generation_success=s["success_rate"], attempts=s["attempts"], **coverage(path),
                      **extra)


def data_title(run: Run, i: int, last_rollout: RolloutResult | None) -> str:
    if i == 1:
        return "D_1 = A_EP(seed)"
    if run.cfg.variant == "replay_only":
        return f"D_{i} = A_EP(seed) onto O_{i}"
    if last_rollout.successes == 0:
        return f"no successful rollouts, D_{i} = A_EP(seed) onto O_{i}"
    if run.cfg.variant == "no_aep":
        return f"D_{i} = the rollouts"
    return (f"D_{i} = A_EP(rollouts {i - 1} grafted onto the seed's motion)"
            + (" + the seed onto the objects no rollout holds" if run.cfg.data.cover else ""))


def make_data(run: Run, i: int, last_rollout: RolloutResult | None) -> DataResult:
    """D_1 carries the seeds; D_i (i > 1) carries the last iteration's rollouts (or, for replay_only and when no rollout
    succeeded, the seeds again onto O_i)."""
    if i == 1:
        return carry(run, 1, run.seed_path, "seed")
    if run.cfg.variant == "replay_only":
        return carry(run, i, run.seed_path, pool_mode(i))
    if last_rollout.successes == 0:
        # the flywheel has nothing of its own to carry: this iteration falls back to replay from the seeds, and the
        # report says so
        return carry(run, i, run.seed_path, pool_mode(i), fallback="replay")
    if run.cfg.variant == "no_aep":
        return DataResult(path=last_rollout.path, **coverage(Path(last_rollout.path)))
    rollouts = graft_rollouts(Path(last_rollout.path), run.seed_path, run.cfg.task,
                              run.out / f"rollouts_{i - 1}_grafted.hdf5")
    covered = {}
    if run.cfg.data.cover:
        rollouts, missing = cover_objects(rollouts, run.seed_path, run.objects[i], run.out / f"rollouts_{i - 1}_covered.hdf5")
        covered = dict(seed_objects=missing)
    return carry(run, i, rollouts, "source", **covered)


# ---------------------------------------------------------------------------------------------------------- 2. base
@dataclass
class TrainResult:
    step: int
    seconds: float
    params: int
    first_loss: float | None
    final_loss: float | None
    samples_per_second: float


def train_base(run: Run, i: int, data: DataResult) -> TrainResult:
    c = run.cfg
    return TrainResult(**train(Path(data.path), run.out / f"base_{i}", c.base, per_iter(c.train_steps, i),
                               seed=c.seed, device=c.device, resume=True, progress=c.progress))


# ---------------------------------------------------------------------------------------------------------- 3. residual
@dataclass
class ResidualResult:
    alpha: float
    """the alpha kept on validation; 0 switches the residual off (the combined policy is the base, bit for bit)"""
    trained_alpha: float
    validation: dict | None
    path: str


def residual_title(run: Run, i: int) -> str:
    return (f"residual RL ({run.cfg.residual.algo}) on O_{min(i + 1, run.cfg.iters)}"
            + (" in the seed's environment and pose" if i < run.cfg.iters else ""))


def residual_stage(run: Run, i: int) -> ResidualResult:
    """Residual RL where the combined policy acts next: the rollouts on O_(i+1) in the seed's environment and pose (off
    it the early bases rarely succeed, and a residual trained there learns corrections that cost success where the
    rollouts happen), and at the last iteration the final policy on every train object, environment and pose."""
    where = (dict(scenarios=run.at_seed(run.next_objects(i))) if i < run.cfg.iters
             else dict(objects=run.next_objects(i)))
    out = run.out / f"residual_{i}"
    r = train_residual(run.out / f"base_{i}" / "checkpoint.pt", out, run.cfg.residual, workers=run.cfg.workers,
                       seed=run.cfg.seed, progress=run.cfg.progress, **where)
    return ResidualResult(alpha=r["alpha"], trained_alpha=r["trained_alpha"], validation=r["validation"], path=str(out))


# ---------------------------------------------------------------------------------------------------------- 4. eval
@dataclass
class Figure:
    mean: float
    std: float
    episodes: int
    successes: int
    interval: list[float]
    per_scenario: dict[str, float]
    same_as_base: bool = False
    """a residual switched off (alpha 0) acts as its base bit for bit: its figures are the base's, not played again"""


@dataclass
class EvalResult:
    figures: dict[str, Figure]
    """by "<test set>/<policy>": T_O, T_OEP and (where a residual decides the rollouts) T_next; base and combined"""

    @classmethod
    def load(cls, d: dict) -> "EvalResult":
        return cls({k: Figure(**v) for k, v in d["figures"].items()})

    def __getitem__(self, key: str) -> Figure:
        return self.figures[key]


def test_sets(run: Run, i: int) -> list[tuple[str, list[str]]]:
    """T_O^i (O_i in the seed's environment and pose), T_OEP (the held-out configurations) and, where a residual will
    decide which policy rolls out, the next objects there."""
    sets = [("T_O", run.at_seed(run.objects[i])), ("T_OEP", [str(s) for s in run.space.scenarios("test_oep")])]
    if i < run.cfg.iters and run.uses_residual:
        sets.append(("T_next", run.at_seed(run.next_objects(i))))
    return sets


def evaluate_policies(run: Run, i: int, residual: ResidualResult | None) -> EvalResult:
    ckpt = run.out / f"base_{i}" / "checkpoint.pt"
    c = run.cfg

    def figure(name: str, scenarios: list[str], policy: str, resid: str | None) -> Figure:
        seeds = c.eval.seeds * (c.eval.t_oep_rounds if name == "T_OEP" else 1)
        s = ev.evaluate(ckpt, run.spec.env_id, "train", seeds, c.eval.episodes, c.workers, resid, scenarios=scenarios)
        print(f"[flywheel]   {name} {policy}: {format_rate(s['successes'], s['episodes'])}")
        return Figure(mean=s["success_mean"], std=s["success_std"], episodes=s["episodes"], successes=s["successes"],
                      interval=s["interval"], per_scenario={k: v["success"] for k, v in s["per_scenario"].items()})

    figures = {}
    for name, scenarios in test_sets(run, i):
        figures[f"{name}/base"] = figure(name, scenarios, "base", None)
        if residual is None:
            continue
        if residual.alpha > 0:
            figures[f"{name}/combined"] = figure(name, scenarios, "combined", residual.path)
        else:
            figures[f"{name}/combined"] = Figure(**dict(asdict(figures[f"{name}/base"]), same_as_base=True))
            print(f"[flywheel]   {name} combined: the base's (residual alpha 0)")
    return EvalResult(figures)


# ---------------------------------------------------------------------------------------------------------- 5. rollouts
def rollout_policy(evals: EvalResult, residual: ResidualResult | None) -> str:
    """The better of the two policies on the next objects: a residual that does worse than its base there (too little
    RL for this base) is left out."""
    on = residual is not None and residual.alpha > 0
    return "combined" if on and evals["T_next/combined"].mean >= evals["T_next/base"].mean else "base"


def roll_out(run: Run, i: int, policy: str, residual: ResidualResult | None) -> RolloutResult:
    c = run.cfg
    num = per_iter(c.data.trajectories, i + 1) if c.variant == "no_aep" else c.data.rollouts
    r = collect_rollouts(run.out / f"rollouts_{i}.hdf5", run.env_args, run.out / f"base_{i}" / "checkpoint.pt",
                         Path(residual.path) if policy == "combined" else None, run.at_seed(run.next_objects(i)),
                         num, 4 * num, i, c.seed, c.workers, c.progress, c.task, c.data.max_slip, policy)
    if r.successes == 0:
        print(f"[flywheel] iteration {i}: no rollout succeeded with a firm grasp on O_{i + 1} ({r.attempts} attempts, "
              f"{r.rejected_slip} rejected for slip); D_{i + 1} falls back to replay from the seed. Train longer "
              f"(--train-steps, --residual.timesteps).")
    return r


def rolls_out(run: Run, i: int) -> bool:
    return i < run.cfg.iters and run.cfg.variant != "replay_only"


__all__ = ["CARRY_ROLLOUTS", "DataResult", "EvalResult", "Figure", "ResidualResult", "RolloutResult", "Run",
           "TrainResult", "coverage", "data_title", "evaluate_policies", "iteration_objects", "make_data", "pool_mode",
           "residual_stage", "residual_title", "roll_out", "rollout_policy", "rolls_out", "seed_demos", "test_sets",
           "train_base"]


# ------------------------------------------------------------------------------------------------------------- 6. film
FILM_EPISODES = 6  # held-out episodes filmed: enough that a policy between 20% and 80% shows both outcomes


def film(run: Run, residual: ResidualResult | None) -> dict:
    """Films the policy the run hands on (combined where its residual is on) on T_OEP scenarios, apart from the
    evaluation (its own seeds), and keeps one success and one failure where both occur: mp4 and a gif the report
    embeds."""
    import imageio.v2 as imageio

    i, c = run.cfg.iters, run.cfg
    resid = residual.path if residual is not None and residual.alpha > 0 else None
    videos = run.out / "videos"
    shutil.rmtree(videos, ignore_errors=True)  # a film an interrupted run left half made
    scenarios = [str(s) for s in run.space.scenarios("test_oep")][:FILM_EPISODES]
    ev.evaluate(run.out / f"base_{i}" / "checkpoint.pt", run.spec.env_id, "train", 1, len(scenarios), c.workers,
                resid, scenarios=scenarios, video_dir=videos, videos_per_seed=len(scenarios), first_seed=900)
    kept = {}
    for outcome in ("success", "fail"):
        mp4 = next(iter(sorted(videos.glob(f"*_{outcome}.mp4"))), None)
        if mp4 is None:
            continue
        frames = imageio.mimread(mp4, memtest=False)[::3]  # every third frame keeps the gif small
        with atomic_write(mp4.with_suffix(".gif")) as tmp:
            imageio.mimsave(tmp, frames, duration=0.15, loop=0)
        kept[outcome] = dict(mp4=str(mp4.relative_to(run.out)), gif=str(mp4.with_suffix(".gif").relative_to(run.out)))
    return dict(policy="combined" if resid else "base", episodes=len(scenarios), videos=kept)
