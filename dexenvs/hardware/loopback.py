"""A loopback robot: the real robot's stand-in, backed by a second SAPIEN simulation of the task.

It takes joint position targets and gives timestamped joint readings and the object's pose, like the devices of a real
setup, and its physics runs in wall-clock time: however long the caller takes between calls, the robot has moved on by
that many control periods. On top of the physics it adds what real links do: command latency, sensor noise, lost
commands and stale readings (the previous message again, with its old timestamp). `HardwareEnv` cannot tell it from a
real robot, so everything above it (controller, safety layer, watchdog, recording) runs as it would on hardware.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from dexenvs.hardware.drivers import JointReading, PoseReading

MAX_CATCH_UP = 200  # control periods simulated in one call at most (a paused process does not stall for minutes)


@dataclass
class LoopbackConfig:
    latency: float = 0.0
    """seconds from `send` until the target reaches the drives"""
    noise: float = 0.0
    """standard deviation of the joint readings' noise (rad or m); the object's position gets the same in m"""
    drop: float = 0.0
    """probability that a command is lost on the way"""
    stale: float = 0.0
    """probability that a reading is the previous one again, old timestamp included"""
    seed: int = 0


class LoopbackRobot:
    """The task's sim with the robot driven by absolute joint targets (`pd_joint_pos`), stepped in wall-clock time."""

    def __init__(self, env_id: str, config: LoopbackConfig | None = None, **env_kwargs):
        self.cfg = config or LoopbackConfig()
        env_kwargs.pop("control_mode", None)  # the robot takes joint targets whatever the task's actions are
        self.env = gym.make(env_id, obs_mode="state_dict", control_mode="pd_joint_pos", **env_kwargs).unwrapped
        agent = self.env.agent
        ctrls = [c for c in agent.controller.controllers.values() if hasattr(c.config, "stiffness")]
        self.joint_names = tuple(j.name for c in ctrls for j in c.joints)
        self._qidx = np.array([[j.name for j in agent.robot.get_active_joints()].index(n) for n in self.joint_names])
        gains = []
        for c in ctrls:
            for k in range(len(c.joints)):
                gains.append([_per_joint(c.config.stiffness, k), _per_joint(c.config.damping, k),
                              _per_joint(c.config.force_limit, k)])
        self._gains = np.array(gains)
        limits = agent.robot.get_qlimits()[0].cpu().numpy()[self._qidx]
        self.lower, self.upper = limits[:, 0], limits[:, 1]
        self.period = 1.0 / self.env.control_freq
        self._rng = np.random.default_rng(self.cfg.seed)
        self._lock = threading.RLock()
        self._started = False
        self.reset(seed=self.cfg.seed)  # switched on: standing at the task's start pose of some scenario

    # ------------------------------------------------------------------ episodes
    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        """Puts the scene where the sim's reset would (the operator's job on a real robot) and restarts the clock."""
        with self._lock:
            self.env.reset(seed=seed, options=options)
            self._target = self._qpos()
            self._queue: deque = deque()
            self._t0 = time.monotonic()
            self._steps = 0
            self._last_joint = self._last_pose = None
            self._held = False
            self._started = True

    def _qpos(self) -> np.ndarray:
        return self.env.agent.robot.get_qpos()[0].cpu().numpy()[self._qidx].astype(np.float64)

    def _qvel(self) -> np.ndarray:
        return self.env.agent.robot.get_qvel()[0].cpu().numpy()[self._qidx].astype(np.float64)

    def advance(self, now: float | None = None) -> None:
        """Simulates every control period that has passed by `now`, each with the targets that had arrived by then."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if not self._started:
                raise RuntimeError("the loopback robot was not reset yet")
            due = min(int((now - self._t0) / self.period) - self._steps, MAX_CATCH_UP)
            for _ in range(max(due, 0)):
                t_step = self._t0 + self._steps * self.period
                while self._queue and self._queue[0][0] <= t_step:
                    self._target = self._queue.popleft()[1]
                self.env.step(self._target.astype(np.float32)[None])
                self._steps += 1
            if due >= MAX_CATCH_UP:  # a long pause: the robot has rested at its target; restart the clock here
                self._t0, self._steps = now, 0

    # ------------------------------------------------------------------ device side
    def command(self, names: tuple[str, ...], targets: np.ndarray) -> None:
        with self._lock:
            self.advance()
            if self._rng.random() < self.cfg.drop:
                return
            full = (self._queue[-1][1] if self._queue else self._target).copy()
            full[[self.joint_names.index(n) for n in names]] = targets
            self._queue.append((time.monotonic() + self.cfg.latency, full))

    def hold(self, names: tuple[str, ...]) -> None:
        """The safe stop: drives hold where the joints are now; queued commands are discarded."""
        with self._lock:
            self.advance()
            idx = [self.joint_names.index(n) for n in names]
            q = self._qpos()
            self._queue = deque((t, np.where(np.isin(np.arange(len(q)), idx), q, c)) for t, c in self._queue)
            self._target[idx] = q[idx]

    def joints(self, names: tuple[str, ...]) -> JointReading:
        with self._lock:
            self.advance()
            if self._last_joint is not None and self._rng.random() < self.cfg.stale:
                r = self._last_joint
            else:
                q, qd = self._qpos(), self._qvel()
                effort = np.clip(self._gains[:, 0] * (self._target - q) - self._gains[:, 1] * qd,
                                 -self._gains[:, 2], self._gains[:, 2])
                noisy = q + self._rng.normal(0.0, self.cfg.noise, q.shape) if self.cfg.noise > 0 else q
                r = JointReading(noisy, time.monotonic(), effort)  # read now, as encoders are
                self._last_joint = r
            idx = [self.joint_names.index(n) for n in names]
            return JointReading(r.qpos[idx].copy(), r.stamp, r.force[idx].copy())

    def object_pose(self) -> PoseReading:
        with self._lock:
            self.advance()
            if self._last_pose is not None and self._rng.random() < self.cfg.stale:
                return self._last_pose
            pose = self.env.obj.pose.raw_pose[0].cpu().numpy().astype(np.float64)
            if self.cfg.noise > 0:
                pose[:3] += self._rng.normal(0.0, self.cfg.noise, 3)
            self._last_pose = PoseReading(pose, time.monotonic())
            return self._last_pose

    def evaluate(self) -> dict:
        """The loopback sim's own success terms (ground truth a real setup does not have)."""
        with self._lock:
            return {k: bool(v.reshape(-1)[0]) for k, v in self.env.evaluate().items() if v.dtype == torch.bool}

    # ------------------------------------------------------------------ drivers
    def drivers(self, split: dict[str, tuple[str, ...]] | None = None) -> list["LoopbackJoints"]:
        """Joint drivers over this robot; default: the arm that carries the wrist (the floating root and wrist
        joints) and the hand (the fingers), as a real setup would have."""
        if split is None:
            ctrls = self.env.agent.controller.controllers
            fingers = tuple(j.name for k in ("fingers", "hand") if k in ctrls for j in ctrls[k].joints)
            split = {"arm": tuple(n for n in self.joint_names if n not in fingers), "hand": fingers}
        return [LoopbackJoints(self, names, label) for label, names in split.items() if names]

    def pose_source(self) -> "LoopbackPose":
        return LoopbackPose(self)

    def reset_hook(self, seed, options, twin) -> None:
        """For `HardwareEnv(reset_hook=...)`: sets this robot's scene to the twin's scenario."""
        self.reset(seed=seed, options=dict(options or {}, scenario=str(twin.scenarios[0])))

    def close(self) -> None:
        self.env.close()


def _per_joint(v, k: int) -> float:
    return float(v[k]) if isinstance(v, (list, tuple, np.ndarray)) else float(v)


class LoopbackJoints:
    """One `JointDriver` over some of the loopback robot's joints."""

    force_unit = "N m (drive effort)"

    def __init__(self, robot: LoopbackRobot, joint_names: tuple[str, ...], label: str = "loopback"):
        self.robot, self.joint_names, self.label = robot, tuple(joint_names), label
        idx = [robot.joint_names.index(n) for n in self.joint_names]
        self.lower, self.upper = robot.lower[idx], robot.upper[idx]
        self.sent: list[np.ndarray] = []  # what reached this driver, for audits

    def connect(self) -> None:
        pass

    def read(self) -> JointReading:
        return self.robot.joints(self.joint_names)

    def send(self, targets: np.ndarray) -> np.ndarray:
        t = np.asarray(targets, np.float64).copy()
        self.sent.append(t)
        self.robot.command(self.joint_names, t)
        return t

    def stop(self) -> None:
        self.robot.hold(self.joint_names)

    def close(self) -> None:
        pass


class LoopbackPose:
    """The object's pose from the loopback sim: a motion-capture system's stand-in."""

    def __init__(self, robot: LoopbackRobot):
        self.robot = robot

    def read(self) -> PoseReading:
        return self.robot.object_pose()

    def close(self) -> None:
        pass
