"""The embodiment-agnostic representation DexWild co-trains human and robot data in (`agents.train --human`).

Nothing in it is tied to a world frame, so a human capture (whose world is wherever the tracker started) and the robot's
sim meet in the same numbers:

- observation, per step: `wrist_delta`, how the wrist moved since the previous step, in the previous wrist frame
  (position and 6D rotation, 9); `obj_in_wrist`, the object's pose in the wrist frame (9), what DexWild's palm cameras
  see; `up_in_wrist`, the world's up axis in the wrist frame (3); `tips_in_wrist`, the five fingertips in the wrist
  frame (15);
- action, per step: the wrist target relative to the previous step's target, in that target's frame (9; DexWild's
  relative end-effector action), then the finger joint targets, absolute (DexWild's hand action).

A robot dataset converts with `relative_dataset`; a human one is written by `generators.human.to_robot` with the same
`features` and `relative_actions`. At run time `RelativeFrontend` turns the env's observations into the features and
chains the relative actions from the last target into the absolute wrist poses `pd_wrist_pose` takes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from dexenvs.robots import matrix_to_rot6d, quat_to_matrix, rot6d_to_matrix
from dexenvs.trajectory import demo_names, open_dataset
from dexenvs.trajectory.dataset import DatasetWriter, Episode

REPRESENTATION = "relative_wrist"
FEATURES = {"wrist_delta": 9, "obj_in_wrist": 9, "up_in_wrist": 3, "tips_in_wrist": 15}
RAW_KEYS = ("extra_wrist_pose", "extra_obj_pose", "extra_fingertip_pos")
WORLD_UP = (0.0, 0.0, 1.0)  # the sim's


# ---- SE(3) in (..., 4, 4) torch ----------------------------------------------------------------------------------
def pose(pos: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(pos.shape[:-1] + (4, 4), dtype=pos.dtype, device=pos.device)
    out[..., :3, :3], out[..., :3, 3], out[..., 3, 3] = rot, pos, 1.0
    return out


def inverse(t: torch.Tensor) -> torch.Tensor:
    rt = t[..., :3, :3].transpose(-1, -2)
    return pose(-(rt @ t[..., :3, 3:])[..., 0], rt)


def to_vec9(t: torch.Tensor) -> torch.Tensor:
    return torch.cat([t[..., :3, 3], matrix_to_rot6d(t[..., :3, :3])], -1)


def from_vec9(v: torch.Tensor) -> torch.Tensor:
    return pose(v[..., :3], rot6d_to_matrix(v[..., 3:9]))


def pose7(p: torch.Tensor) -> torch.Tensor:
    """(..., 7) position + wxyz quaternion (ManiSkill's poses) -> (..., 4, 4)."""
    return pose(p[..., :3], quat_to_matrix(p[..., 3:7]))


# ---- the representation -------------------------------------------------------------------------------------------
def features(wrist: torch.Tensor, prev_wrist: torch.Tensor, obj: torch.Tensor, tips: torch.Tensor,
             up: torch.Tensor) -> dict[str, torch.Tensor]:
    """Observation features from world-frame quantities: wrist and previous wrist (..., 4, 4), object (..., 4, 4),
    fingertips (..., 5, 3), up (3,)."""
    rot, pos = wrist[..., :3, :3], wrist[..., :3, 3]
    return dict(wrist_delta=to_vec9(inverse(prev_wrist) @ wrist),
                obj_in_wrist=to_vec9(inverse(wrist) @ obj),
                up_in_wrist=(up.to(rot) @ rot),
                tips_in_wrist=((tips - pos[..., None, :]) @ rot).flatten(-2))


def relative_actions(targets: torch.Tensor, start: torch.Tensor, fingers: torch.Tensor) -> torch.Tensor:
    """(T, 9 + F) actions from absolute wrist targets (T, 4, 4) and finger targets (T, F): each target relative to the
    one before it, the first relative to `start` (4, 4), the wrist where the episode began."""
    prev = torch.cat([start[None], targets[:-1]])
    return torch.cat([to_vec9(inverse(prev) @ targets), fingers], -1)


def robot_episode(obs: dict[str, np.ndarray], actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One robot demo (flat obs keys, pd_wrist_pose actions) in the representation."""
    o = {k: torch.as_tensor(obs[k], dtype=torch.float64) for k in RAW_KEYS}
    a = torch.as_tensor(actions, dtype=torch.float64)
    wrist, obj = pose7(o["extra_wrist_pose"]), pose7(o["extra_obj_pose"])
    prev = torch.cat([wrist[:1], wrist[:-1]])
    f = features(wrist, prev, obj, o["extra_fingertip_pos"].reshape(len(a), -1, 3),
                 torch.tensor(WORLD_UP, dtype=torch.float64))
    rel = relative_actions(from_vec9(a[:, :9]), wrist[0], a[:, 9:])
    return {k: v.float().numpy() for k, v in f.items()}, rel.float().numpy()


def relative_dataset(src: str | Path, dst: str | Path) -> Path:
    """Writes `src` (a robot dataset recorded with pd_wrist_pose) in the representation to `dst`, one demo per demo
    (its scenario, seed and success kept; the train/valid masks drawn afresh, as every writer draws them)."""
    with open_dataset(src) as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        if env_args.get("control_mode") != "pd_wrist_pose":
            raise ValueError(f"{src}: the relative representation needs pd_wrist_pose actions, the dataset has "
                             f"{env_args.get('control_mode')!r}")
        writer = DatasetWriter(dst, dict(env_args, representation=REPRESENTATION, embodiment="robot"))
        for name in demo_names(f):
            g = f["data"][name]
            feats, rel = robot_episode({k: g["obs"][k][()] for k in RAW_KEYS}, g["actions"][()])
            n = len(rel)
            writer.add(Episode(actions=rel, obs=feats, rewards=np.zeros(n, np.float32), dones=np.zeros(n, bool),
                               states=np.zeros((n, 0), np.float32), datagen_info={}, scenario=g.attrs["scenario"],
                               seed=int(g.attrs["seed"]), success=bool(g.attrs["success"]),
                               provenance=dict(source=f"{src}:{name}", representation=REPRESENTATION)))
    return writer.close()


class RelativeFrontend:
    """What a policy trained in the representation wraps around itself in an env: env observations -> features, and
    relative actions -> the absolute `pd_wrist_pose` action (targets chained from the last one, per env)."""

    def __init__(self, up=WORLD_UP):
        self.up = torch.tensor(up, dtype=torch.float32)
        self.prev_wrist = self.target = None
        self.fresh: torch.Tensor | None = None

    def reset(self, env_idx=None) -> None:
        if env_idx is None or self.fresh is None:
            self.prev_wrist = self.target = self.fresh = None
        else:
            self.fresh[torch.as_tensor(env_idx)] = True

    def observe(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        wrist = pose7(obs["extra_wrist_pose"].float())
        if self.fresh is None or len(self.fresh) != len(wrist):
            self.prev_wrist, self.target = wrist.clone(), wrist.clone()
            self.fresh = torch.zeros(len(wrist), dtype=torch.bool)
        fresh = self.fresh  # envs reset since their last step: their chain starts at the wrist they see
        self.prev_wrist[fresh] = wrist[fresh]
        self.target[fresh] = wrist[fresh]
        fresh[:] = False
        out = features(wrist, self.prev_wrist, pose7(obs["extra_obj_pose"].float()),
                       obs["extra_fingertip_pos"].float().reshape(len(wrist), -1, 3), self.up.to(wrist.device))
        self.prev_wrist = wrist
        return out

    def command(self, action: torch.Tensor) -> torch.Tensor:
        self.target = self.target.to(action) @ from_vec9(action[:, :9])
        return torch.cat([to_vec9(self.target), action[:, 9:]], -1)
