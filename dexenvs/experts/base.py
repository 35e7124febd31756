"""What every scripted expert shares: a fixed schedule of segments, each mapped to a phase label, and the wrist poses
the hands started from."""

from __future__ import annotations

import numpy as np

from dexenvs.base import DexEnv
from dexenvs.robots import quat_to_matrix

OPEN = np.zeros(6, dtype=np.float32)  # finger targets of an open hand


def slerp(r0: np.ndarray, r1: np.ndarray, t: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation, Slerp

    return Slerp([0, 1], Rotation.from_matrix(np.stack([r0, r1])))(t).as_matrix()


class ScriptedExpert:
    segments: dict[str, int] = {}  # segment name -> control steps, in order
    phase_of_segment: dict[str, str] = {}

    def __init__(self, env):
        self.env: DexEnv = env.unwrapped
        self.t = 0

    @property
    def horizon(self) -> int:
        return sum(self.segments.values())

    def segment(self, t: int) -> tuple[str, float]:
        """(segment name, progress in (0, 1]) of control step t; past the schedule, the last segment at 1."""
        for name, n in self.segments.items():
            if t < n:
                return name, (t + 1) / n
            t -= n
        return list(self.segments)[-1], 1.0

    def reset(self) -> None:
        """Call after env.reset: restarts the schedule and records each hand's start wrist pose per sub-env."""
        env = self.env
        self.t = 0
        self.start = []
        for k in range(len(env._hands)):
            hs = env.hand_state(k)
            rots = quat_to_matrix(hs["wrist_quat"]).cpu().numpy()
            self.start.append([(hs["wrist_pos"][i].cpu().numpy(), rots[i]) for i in range(env.num_envs)])
        self.frozen: list = [None] * env.num_envs

    @staticmethod
    def smooth(s: float) -> float:
        return 0.5 - 0.5 * np.cos(np.pi * s)
