"""Scripted expert for DexGrasp-v0 in the `pd_wrist_pose` mode: a grasp computed from the object's geometry, then
approach, close, lift, hold. Every step carries a phase label (approach, grasp, lift, hold) for later generators.

Two grasp families, chosen by the object's height:
- side (power) grasp for objects at least `SIDE_MIN_HEIGHT` tall: palm vertical facing the object, fingers horizontal
  wrapping it, thumb up and opposing; the approach comes from the robot's side (-x), turned away from handles;
- top grasp for short objects: palm down above the object, fingers and thumb closing around it from above.
The grasp point and offsets are in the hand base frame (fingers +y, palm normal +z, thumb +x), measured on the Inspire
hand's closed-hand geometry: closed fingertips meet ~0.12 m along the fingers and ~0.07 m in front of the palm.
"""

from __future__ import annotations

import numpy as np
import torch

from dexenvs.base import DexEnv
from dexenvs.robots import quat_to_matrix

PHASES = ("approach", "grasp", "lift", "hold")
OPEN = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)
# thumb CMC yaw, thumb CMC pitch, index, middle, ring, pinky (radians; closing is negative)
CLOSED = np.array([-1.15, -0.48, -1.34, -1.34, -1.34, -1.34], dtype=np.float32)
PRESHAPE = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)  # flat: an opposed thumb would push the object away on approach
SIDE_MIN_HEIGHT = 0.075
SIDE_GRASP = dict(along=0.075, palm_gap=0.032, min_z=0.05, back_off=0.10)
TOP_GRASP = dict(along=0.08, palm_gap=0.032, back_off=0.10)
SEGMENTS = dict(pre=18, approach=14, close=12, lift=24, hold=20)


def _rot_from_axes(fingers: np.ndarray, palm: np.ndarray) -> np.ndarray:
    """Wrist rotation whose base +y is `fingers` and +z is `palm` (the palm normal); +x = y cross z (thumb side)."""
    y = fingers / np.linalg.norm(fingers)
    z = palm - np.dot(palm, y) * y
    z /= np.linalg.norm(z)
    x = np.cross(y, z)
    return np.stack([x, y, z], axis=1)


def _slerp(r0: np.ndarray, r1: np.ndarray, t: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation, Slerp

    return Slerp([0, 1], Rotation.from_matrix(np.stack([r0, r1])))(t).as_matrix()


class GraspExpert:
    """Plans per episode from the object's pose and geometry, then replays the plan open loop (batched over envs)."""

    def __init__(self, env):
        self.env: DexEnv = env.unwrapped
        self.plans: list[dict] = []
        self.t = 0

    def grasp_pose(self, i: int) -> tuple[np.ndarray, np.ndarray, str]:
        """World wrist position and rotation of the grasp for sub-env i, and the grasp family."""
        env = self.env
        asset = env._assets[i]
        pose = env.obj.pose
        R_obj = quat_to_matrix(pose.q[i : i + 1])[0].cpu().numpy()
        center = env.obj_center()[i].cpu().numpy()
        ex, ey, h = asset.extents
        if h >= SIDE_MIN_HEIGHT:
            # approach horizontally from -x; if the bbox centre is off the base axis (a handle), come from the side
            approach = np.array([1.0, 0.0, 0.0])
            off = R_obj[:, :2] @ np.array(asset.center[:2])
            if np.linalg.norm(off) > 0.004:
                handle_dir = off / np.linalg.norm(off)
                approach = np.array([-handle_dir[1], handle_dir[0], 0.0])
                if approach[0] < 0:
                    approach = -approach
            up = np.array([0.0, 0.0, 1.0])
            fingers = np.cross(approach, up)  # horizontal; with palm = approach this puts the thumb (+x) up
            rot = _rot_from_axes(fingers, approach)  # thumb = fingers x palm = up
            radius = self._half_width(R_obj, asset, approach)
            target = center.copy()
            target[2] = max(center[2], SIDE_GRASP["min_z"] + 0.0)
            along = SIDE_GRASP["along"]
            gap = radius + SIDE_GRASP["palm_gap"]
            pos = target - rot @ np.array([0.0, along, gap])
            return pos, rot, "side"
        # top grasp: palm down, fingers along the object's longer horizontal axis turned toward +x
        axis = R_obj[:, 0] if ex >= ey else R_obj[:, 1]
        axis = np.array([axis[0], axis[1], 0.0])
        axis = axis / max(np.linalg.norm(axis), 1e-6)
        fingers = np.array([-axis[1], axis[0], 0.0])  # across the long axis so fingers wrap the narrow side
        if fingers[0] < 0:
            fingers = -fingers
        rot = _rot_from_axes(fingers, np.array([0.0, 0.0, -1.0]))
        top = center.copy()
        top[2] = center[2] + h / 2
        pos = top - rot @ np.array([0.0, TOP_GRASP["along"], -TOP_GRASP["palm_gap"]])
        return pos, rot, "top"

    @staticmethod
    def _half_width(R_obj, asset, direction) -> float:
        ex, ey, _ = asset.extents
        d_local = R_obj.T @ direction
        return 0.5 * (abs(d_local[0]) * ex + abs(d_local[1]) * ey) if asset.category == "box" else 0.5 * min(max(ex, ey), 2 * min(ex, ey))

    def reset(self) -> None:
        env = self.env
        self.t = 0
        self.plans = []
        hs = env.hand_state()
        for i in range(env.num_envs):
            pos, rot, family = self.grasp_pose(i)
            start_p = hs["wrist_pos"][i].cpu().numpy()
            start_r = quat_to_matrix(hs["wrist_quat"][i : i + 1])[0].cpu().numpy()
            back = rot[:, 2] * -(SIDE_GRASP if family == "side" else TOP_GRASP)["back_off"]
            pre = pos + back
            lift = pos + np.array([0.0, 0.0, 0.32])
            self.plans.append(self._waypoints(start_p, start_r, pre, pos, lift, rot))

    @staticmethod
    def _waypoints(start_p, start_r, pre, grasp, lift, rot) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, str]]:
        steps = []
        n = SEGMENTS["pre"]
        for k in range(1, n + 1):
            t = k / n
            s = 0.5 - 0.5 * np.cos(np.pi * t)
            steps.append((start_p + s * (pre - start_p), _slerp(start_r, rot, s), PRESHAPE * s, "approach"))
        n = SEGMENTS["approach"]
        for k in range(1, n + 1):
            s = k / n
            steps.append((pre + s * (grasp - pre), rot, PRESHAPE, "approach"))
        n = SEGMENTS["close"]
        for k in range(1, n + 1):
            s = k / n
            steps.append((grasp, rot, PRESHAPE + s * (CLOSED - PRESHAPE), "grasp"))
        n = SEGMENTS["lift"]
        for k in range(1, n + 1):
            s = 0.5 - 0.5 * np.cos(np.pi * k / n)
            steps.append((grasp + s * (lift - grasp), rot, CLOSED, "lift"))
        for _ in range(SEGMENTS["hold"]):
            steps.append((lift, rot, CLOSED, "hold"))
        return steps

    @property
    def horizon(self) -> int:
        return sum(SEGMENTS.values())

    def act(self, obs=None) -> tuple[torch.Tensor, list[str]]:
        """The next `pd_wrist_pose` action (num_envs, 15) and each env's phase label."""
        k = min(self.t, self.horizon - 1)
        self.t += 1
        rows, phases = [], []
        for plan in self.plans:
            p, r, f, ph = plan[k]
            rows.append(np.concatenate([p, r[:, 0], r[:, 1], f]).astype(np.float32))
            phases.append(ph)
        return torch.as_tensor(np.stack(rows), device=self.env.device), phases
