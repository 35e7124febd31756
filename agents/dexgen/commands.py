"""Keypoint-motion command sources for evaluating a keypoint-command controller (DexGen's simulation study and its
teleoperation study), each called once per control step on a `_KeypointCommandEnv` (DexGenController or
DirectController) after its reset.

- `PlannerCommand`: the planner expert's own keypoint motion (DexRegrasp-v0's `RegraspPlanner`): the keypoints of its
  next joint targets minus those of the current targets, repeated over the horizon; optionally corrupted as DexGen's
  study did, additive `add` (uniform in +-level, in the training motions' standard deviations) or multiplicative `mul`
  (each number times U(0, level)).
- `TeleopCommand`: a coarse teleoperation of a regrasp: the goal grasp's keypoints, reached by linear interpolation
  from where the keypoints start over `steps` steps, tracked from where the keypoints are, with Gaussian jitter.
- `PathCommand`: a given keypoint path (T, K, 3) in the hand frame, one waypoint per control step, tracked from where
  the keypoints are: a human hand's fingertip motion retargeted to the robot (`benchmarks.human_regrasp`).
"""

from __future__ import annotations

import numpy as np
import torch

from agents.dexgen.kinematics import KeypointKinematics

NOISE_KINDS = ("clean", "add", "mul")


class PlannerCommand:
    def __init__(self, env, kind: str = "clean", level: float = 0.0, motion_std=None, seed: int = 0):
        from dexenvs.experts.regrasp import RegraspPlanner

        if kind not in NOISE_KINDS:
            raise ValueError(f"unknown noise kind {kind!r}; valid: {list(NOISE_KINDS)}")
        if kind == "add" and motion_std is None:
            raise ValueError("additive noise is in normalized units: pass motion_std (the model's motion_std)")
        self.env, self.kind, self.level = env, kind, float(level)
        self.std = None if motion_std is None else torch.as_tensor(np.asarray(motion_std), dtype=torch.float32)
        self.planner = RegraspPlanner(env.unwrapped)
        self.kin = KeypointKinematics(env)
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        self.planner.reset()
        if seed is not None:
            self.rng = np.random.default_rng([seed, 11])

    def __call__(self) -> torch.Tensor:
        base = self.env.unwrapped
        targets, _ = self.planner.act()
        current = base.agent.controller._target_qpos
        steps = torch.arange(1, self.env.horizon + 1, dtype=torch.float32)[:, None, None]
        cmds = []
        for i in range(base.num_envs):
            d = self.kin.fk(targets[i].cpu().numpy()) - self.kin.fk(current[i].cpu().numpy())
            cmds.append(steps * torch.as_tensor(d, dtype=torch.float32))
        c = torch.stack(cmds)
        if self.kind == "add":
            u = torch.as_tensor(self.rng.uniform(-self.level, self.level, c.shape), dtype=torch.float32)
            c = c + u * self.std.reshape(c.shape[1:])
        elif self.kind == "mul":
            c = c * torch.as_tensor(self.rng.uniform(0.0, self.level, c.shape), dtype=torch.float32)
        return c


class PathCommand:
    """Tracks waypoints one per control step (the last held): the command's step k moves the keypoints from where
    they are to waypoint t + k."""

    jitter = 0.0

    def __init__(self, env, path: np.ndarray | None = None):
        self.env = env
        self.path = None if path is None else np.asarray(path, dtype=np.float64)
        self.rng = np.random.default_rng(0)

    def reset(self, seed: int | None = None) -> None:
        self.t = 0

    def waypoint(self, t: int) -> np.ndarray:
        return self.path[min(t, len(self.path) - 1)][None]

    def __call__(self) -> torch.Tensor:
        now = self.env.unwrapped.snapshot()["keypoints"].cpu().numpy()
        c = np.stack([self.waypoint(self.t + k) - now for k in range(self.env.horizon)], 1)
        if self.jitter:
            c = c + self.rng.normal(0.0, self.jitter, c.shape)
        self.t += 1
        return torch.as_tensor(np.clip(c, -0.05, 0.05), dtype=torch.float32)


class TeleopCommand(PathCommand):
    def __init__(self, env, steps: int = 20, jitter: float = 0.003, seed: int = 0):
        super().__init__(env)
        self.steps, self.jitter = int(steps), float(jitter)
        self.kin = KeypointKinematics(env)
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        base = self.env.unwrapped
        if seed is not None:
            self.rng = np.random.default_rng([seed, 13])
        self.t = 0
        self.start = base.snapshot()["keypoints"].cpu().numpy().copy()
        goals = []
        for i in range(base.num_envs):
            gs = base.grasp_set(base.scenarios[i].object_id)
            goals.append(self.kin.fk(gs.q[int(base.goal_grasp[i])].cpu().numpy()))
        self.goal = np.stack(goals)

    def waypoint(self, t: int) -> np.ndarray:
        a = min(1.0, (t + 1) / self.steps)
        return self.start + a * (self.goal - self.start)
