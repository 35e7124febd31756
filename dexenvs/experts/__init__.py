"""Scripted experts (the stand-in for teleoperated seed demonstrations), one per task, all acting in `pd_wrist_pose`.

`EXPERTS` maps a task name to (env id, expert class); `rollout` runs one on a batch of envs.
"""

from __future__ import annotations

from typing import Literal

import torch

from dexenvs.experts.grasp import GraspExpert
from dexenvs.experts.handover import HandoverExpert
from dexenvs.experts.lift import LiftExpert
from dexenvs.experts.pour import PourExpert

TaskName = Literal["grasp", "pour", "lift", "handover"]
EXPERTS = {"grasp": ("DexGrasp-v0", GraspExpert), "pour": ("DexPour-v0", PourExpert), "lift": ("DexLift-v0", LiftExpert),
           "handover": ("DexHandover-v0", HandoverExpert)}


def episode_options(task: str, seed: int, demonstrated: list[dict] | None = None) -> dict | None:
    """Reset options of episode `seed`: expert runs alternate the handover's giving hand. A policy is asked only what its
    training data demonstrates (`demonstrated`: the distinct reset options of its demos, taken in turn), since a
    dataset replayed from a right-handed seed holds no left-handed handover."""
    if demonstrated:
        return dict(demonstrated[seed % len(demonstrated)])
    return {"giver": ("right", "left")[seed % 2]} if task == "handover" else None


def rollout(env, expert, seed=None, options=None) -> dict:
    """Runs one expert episode per sub-env of a batched (unwrapped ManiSkill) env until success or the expert's horizon.
    Returns success (b,), steps taken, and the phase label of each step."""
    env.reset(seed=seed, options=options)
    expert.reset()
    base = env.unwrapped
    done = torch.zeros(base.num_envs, dtype=torch.bool, device=base.device)
    success = done.clone()
    phases = []
    for t in range(expert.horizon):
        action, phase = expert.act()
        phases.append(phase)
        _, _, _, _, info = env.step(action)
        success |= info["success"]
        done |= info["success"] | info["fail"]
        if done.all():
            break
    return dict(success=success.cpu(), steps=t + 1, phases=phases)
