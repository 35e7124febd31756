"""Scripted experts (the stand-in for teleoperated seed demonstrations), one per task, all acting in `pd_wrist_pose`.
Each task's spec names its expert (`get_task("grasp").expert`); `rollout` runs one on a batch of envs."""

from __future__ import annotations

import torch


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
