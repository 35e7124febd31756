"""Cutting a demo into object-centric subtasks (MimicGen's recipe): per hand, the maximal runs of one phase label, each
with the frame it is carried in. A policy rollout, which has no labels, gets them from MimicGen-style subtask signals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dexenvs.tasks import get_task
from dexenvs.trajectory import Episode

LIFTED = 0.02  # m the object has risen from where it started: it is in hand


@dataclass(frozen=True)
class Segment:
    hand: int
    start: int  # source steps [start, end)
    end: int
    phase: str
    reference: str  # object | target | start


def first_lifted(ep: Episode) -> int | None:
    """The first step the object has risen `LIFTED` above where it started (it is in the hand), None if it never does."""
    z = np.asarray(ep.datagen_info["obj_pose"])[:, 2]
    up = np.flatnonzero(z - z[0] > LIFTED)
    return int(up[0]) if len(up) else None


def label_phases(ep: Episode, task: str, robots: list[str]) -> tuple[np.ndarray, list[str]]:
    """Phase labels for a demo recorded without them (a policy rollout), from its datagen info, as MimicGen's
    subtask-termination signals: each hand approaches until the object has risen `LIFTED` above where it started, and
    then carries it (the task's `carry_phase`, so that a carry the task references elsewhere, as the pour's bowl, is
    carried there). A hand whose role holds the object out from the start (the handover's giver) holds all along,
    relative to its own start pose, as in the seed."""
    spec = get_task(task)
    up = first_lifted(ep)
    up = len(ep) if up is None else up
    names = ["approach", spec.carry_phase, "hold"]
    roles = spec.hand_roles(robots, ep.reset_options)
    phase = np.zeros((len(ep), len(robots)), np.int8)
    for k, role in enumerate(roles):
        phase[up:, k] = 1
        if role in spec.giving_roles:
            phase[:, k] = 2
    return phase, names


def segment_source(ep: Episode, task: str, robots: list[str]) -> list[list[Segment]]:
    """Per hand, the source's maximal runs of one phase label, each with the reference it is carried relative to."""
    spec = get_task(task)
    refs = spec.references
    phase, names = np.asarray(ep.datagen_info["phase"]), list(ep.phase_names)
    if not names or phase.ndim != 2 or phase.shape[1] != len(robots) or (phase < 0).all():
        phase, names = label_phases(ep, task, robots)
    roles = spec.hand_roles(robots, ep.reset_options)
    out = []
    for k in range(phase.shape[1]):
        segs, start = [], 0
        for t in range(1, len(phase) + 1):
            if t == len(phase) or phase[t, k] != phase[start, k]:
                name = names[phase[start, k]] if phase[start, k] >= 0 else "unlabelled"
                ref = refs.get(f"{roles[k]}/{name}", refs.get(name, "object"))
                segs.append(Segment(k, start, t, name, ref))
                start = t
        out.append(segs)
    return out
