"""An example of a user policy for the leaderboard: `--agent benchmarks.leaderboard.example_agent:make`.

`make(env_id)` returns an object with `reset(seed)` and `act(obs)`; `obs` is what `gym.make(env_id, obs_mode=
"state_dict")` returns (numpy, one env), the action what its `step` takes. This one is a reach-close-lift heuristic for
DexGrasp-v0: it moves the palm beside the object's centre, closes the fingers and raises the wrist, reading only the
observation (no sim state), so it is a fair, if weak, baseline.
"""

from __future__ import annotations

import numpy as np

from dexenvs.base import hand_rotation
from dexenvs.robots import matrix_to_rot6d

import torch


class ReachCloseLift:
    obs_mode = "state_dict"

    def __init__(self, env_id: str):
        if env_id != "DexGrasp-v0":
            raise ValueError(f"the example agent plays DexGrasp-v0 only, not {env_id}")
        rot = hand_rotation(fingers=(0, 0, -1), palm=(0, 1, 0))  # fingers down, palm toward +y
        self.rot6d = matrix_to_rot6d(torch.as_tensor(rot, dtype=torch.float32)).numpy()

    def reset(self, seed: int | None = None) -> None:
        self.t = 0

    def act(self, obs: dict) -> np.ndarray:
        extra = obs["extra"]
        centre = extra["obj_pose"][:3] + np.array([0.0, 0.0, extra["obj_extents"][2] / 2])
        target = centre + np.array([0.0, -0.06, 0.05])
        fingers = np.zeros(6, np.float32)
        if self.t > 40:
            fingers = np.array([-1.3, -0.48, -1.34, -1.34, -1.34, -1.34], np.float32)
        if self.t > 55:
            target = target + np.array([0.0, 0.0, min(0.3, 0.01 * (self.t - 55))])
        self.t += 1
        return np.concatenate([target, self.rot6d, fingers]).astype(np.float32)


def make(env_id: str) -> ReachCloseLift:
    return ReachCloseLift(env_id)
