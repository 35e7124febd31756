"""What the rest of the suite knows about a task, as one `TaskSpec` per task, and the registry that maps names to them.

A task's file (`dexenvs/tasks/<task>.py`) holds its env class and its spec and calls `register_task(SPEC)`; generators,
agents and benchmarks ask the registry (`get_task("grasp")`, `task_of_env("DexGrasp-v0")`) instead of keeping tables
of their own, so adding a task edits no file outside the task's own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from dexenvs.cli import UsageError


@dataclass(frozen=True)
class FlywheelPreset:
    """How `generators.flywheel` runs the task unless told otherwise."""

    seed_scenarios: tuple[str, ...]
    """one scripted seed demo per category of the task's train objects, object|environment|pose: one seed's carried
    motion does not reach another category"""
    train_steps: tuple[int, ...]
    """base-policy training steps per iteration (the last repeats for more iterations)"""
    cover: bool
    """also carry the category seed onto each object of O_i that no kept rollout holds"""
    max_slip: float = 0.0
    """keep a successful rollout only if its object slid at most this far (m) in the hand while carried; 0: no limit"""
    quick_train_steps: tuple[int, ...] = (3000,)
    """the `--quick` preset's steps per iteration"""


def every_hand(robots: Sequence[str], reset_options: Mapping) -> list[str]:
    """Roles of a task whose hands all do the same job."""
    return ["hand"] * len(robots)


def no_options(seed: int) -> dict:
    return {}


@dataclass(frozen=True)
class TaskSpec:
    name: str
    env_cls: type
    """the registered env class (`dexenvs.registration.register`); its id is `env_cls.env_id`"""
    expert: type
    """the scripted expert (`dexenvs.experts.base.ScriptedExpert`), acting in `pd_wrist_pose`"""
    carry_phase: str
    """what the expert calls the subtask that carries the object: a policy rollout, which has no labels, is cut into
    approach / <carry_phase> / hold where its object rises"""
    flywheel: FlywheelPreset
    references: Mapping[str, str] = field(default_factory=dict)
    """A_EP: the frame each subtask is carried in, by "<role>/<phase>" or "<phase>": "object" (the default), "target"
    (the task's second object) or "start" (the hand's own start pose)"""
    hand_roles: Callable[[Sequence[str], Mapping], list[str]] = every_hand
    """each hand's role from the robots and the episode's reset options; A_EP's references are looked up under it"""
    giving_roles: tuple[str, ...] = ()
    """roles that start out holding the object and only let go of it (the handover's giver): a rollout labels them
    `hold` throughout, and a rollout's grasp grafted onto the seed leaves their motion the seed's"""
    expert_options: Callable[[int], dict] = no_options
    """reset options of scripted-expert episode `seed` (the handover alternates its giving hand)"""
    grasp_at_end: bool = False
    """a hand's grasp is read from a demo's last steps (the object changes hands and need not rise) instead of where the
    object first rises"""
    slip_measurable: bool = True
    """whether the object's slip in the hand while carried means anything (not where it changes hands)"""
    reference_t_oep: tuple[float, ...] | None = None
    """DexFlyWheel's published T_OEP success per iteration (%), where the paper has this task"""
    reference_replay: float | None = None
    """DexFlyWheel's replay baseline (DexMimicGen, enhanced) on T_OEP (%)"""

    @property
    def env_id(self) -> str:
        return self.env_cls.env_id

    def scenario_space(self):
        return self.env_cls.scenario_space()

    def episode_options(self, seed: int, demonstrated: Sequence[Mapping] | None = None) -> dict:
        """Reset options of episode `seed`. A policy is asked only what its training data demonstrates (`demonstrated`:
        the distinct reset options of its demos, taken in turn): a dataset carried from a right-handed seed holds no
        left-handed handover. Without it, the expert's options."""
        if demonstrated:
            return dict(demonstrated[seed % len(demonstrated)])
        return dict(self.expert_options(seed))


_TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    """Adds a task to the registry (again under the same name: replaces it)."""
    if not getattr(spec.env_cls, "env_id", None):
        raise ValueError(f"task {spec.name!r}: register its env class with dexenvs.registration.register first")
    if spec.env_cls.task_name != spec.name:
        raise ValueError(f"task {spec.name!r}: its env class {spec.env_cls.__name__} says task_name="
                         f"{spec.env_cls.task_name!r}")
    _TASKS[spec.name] = spec
    return spec


def task_modules() -> list[str]:
    """The modules that define the registered tasks: a new process imports them (`import_tasks`) to see the same tasks
    as the process that started it, a task defined outside dexenvs included."""
    return sorted({spec.env_cls.__module__ for spec in _TASKS.values()})


def import_tasks(modules: list[str]) -> None:
    for m in modules:
        importlib.import_module(m)


def task_names() -> list[str]:
    return list(_TASKS)


def get_task(name: str) -> TaskSpec:
    if name not in _TASKS:
        raise UsageError("task", name, f"unknown task; valid: {task_names()}")
    return _TASKS[name]


def task_of_env(env_id: str) -> TaskSpec:
    for spec in _TASKS.values():
        if spec.env_id == env_id:
            return spec
    raise UsageError("env", env_id, f"unknown env; dexsuite envs: {[s.env_id for s in _TASKS.values()]}")
