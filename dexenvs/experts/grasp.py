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
SIDE_MIN_HEIGHT = 1.0
# where the object's reference point (side: centre; top: top) sits in the hand base frame at the grasp
SIDE_GRASP = dict(point=(0.0, 0.075, 0.032), min_z=0.05, back_off=0.10)
TOP_GRASP = dict(point=(0.03, 0.11, 0.02), back_off=0.10)
SEGMENTS = dict(pre=18, approach=14, close=30, lift=24, hold=20)
PHASE_OF_SEGMENT = dict(pre="approach", approach="approach", close="grasp", lift="lift", hold="hold")
LIFT = 0.32


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
        R_obj = quat_to_matrix(env.obj.pose.q[i : i + 1])[0].cpu().numpy()
        center = env.obj_center()[i].cpu().numpy()
        ex, ey, h = asset.extents
        family = "side" if h >= SIDE_MIN_HEIGHT else "top"
        g = SIDE_GRASP if family == "side" else TOP_GRASP
        if family == "side":
            # approach horizontally from -x; if the bbox centre is off the base axis (a handle), come from the side
            approach = np.array([1.0, 0.0, 0.0])
            off = R_obj[:, :2] @ np.array(asset.center[:2])
            if np.linalg.norm(off) > 0.004:
                handle_dir = off / np.linalg.norm(off)
                approach = np.array([-handle_dir[1], handle_dir[0], 0.0])
                if approach[0] < 0:
                    approach = -approach
            fingers = np.cross(approach, np.array([0.0, 0.0, 1.0]))  # horizontal; thumb (+x) then points up
            rot = _rot_from_axes(fingers, approach)
            depth = self._half_width(R_obj, asset, approach)
            point = center  # the object's centre sits at `g["point"]` (+ its half depth in front of the palm)
        else:
            # palm down, fingers across the object's longer horizontal axis, pointing away from the robot (+x)
            axis = R_obj[:, 0] if ex >= ey else R_obj[:, 1]
            fingers = np.array([-axis[1], axis[0], 0.0])
            fingers /= max(np.linalg.norm(fingers), 1e-6)
            if fingers[0] < 0:
                fingers = -fingers
            rot = _rot_from_axes(fingers, np.array([0.0, 0.0, -1.0]))
            depth = 0.0
            point = center + np.array([0.0, 0.0, h / 2])  # the object's top
        local = np.array(g["point"]) + np.array([0.0, 0.0, depth])
        pos = point - rot @ local
        pos[2] = max(pos[2], g.get("min_z", -1.0))
        return pos, rot, family

    @staticmethod
    def _half_width(R_obj, asset, direction) -> float:
        """Half the object's depth along a horizontal direction (boxes by their faces, round things by radius)."""
        ex, ey, _ = asset.extents
        d_local = R_obj.T @ direction
        if asset.category in ("box", "wide_box"):
            return 0.5 * (abs(d_local[0]) * ex + abs(d_local[1]) * ey)
        return 0.5 * min(ex, ey)

    def reset(self) -> None:
        """Call after env.reset: records the start pose; grasps are re-planned from the live object pose until the
        fingers start closing, so a nudged or settling object is still grasped where it is."""
        env = self.env
        self.t = 0
        hs = env.hand_state()
        self.start = [(hs["wrist_pos"][i].cpu().numpy(), quat_to_matrix(hs["wrist_quat"][i : i + 1])[0].cpu().numpy())
                      for i in range(env.num_envs)]
        self.frozen: list[tuple] = [None] * env.num_envs

    @property
    def horizon(self) -> int:
        return sum(SEGMENTS.values())

    def segment(self, t: int) -> tuple[str, float]:
        """(segment name, progress in (0, 1]) of control step t."""
        for name, n in SEGMENTS.items():
            if t < n:
                return name, (t + 1) / n
            t -= n
        return "hold", 1.0

    def act(self, obs=None) -> tuple[torch.Tensor, list[str]]:
        """The next `pd_wrist_pose` action (num_envs, 15) and each env's phase label."""
        seg, s = self.segment(self.t)
        self.t += 1
        smooth = 0.5 - 0.5 * np.cos(np.pi * s)
        rows = []
        for i in range(self.env.num_envs):
            if seg in ("pre", "approach") or self.frozen[i] is None:
                self.frozen[i] = self.grasp_pose(i)
            pos, rot, family = self.frozen[i]
            pre = pos - rot[:, 2] * (SIDE_GRASP if family == "side" else TOP_GRASP)["back_off"]
            if seg == "pre":
                p0, r0 = self.start[i]
                p, r, f = p0 + smooth * (pre - p0), _slerp(r0, rot, smooth), OPEN
            elif seg == "approach":
                p, r, f = pre + s * (pos - pre), rot, PRESHAPE
            elif seg == "close":
                p, r, f = pos, rot, PRESHAPE + s * (CLOSED - PRESHAPE)
            elif seg == "lift":
                p, r, f = pos + smooth * np.array([0.0, 0.0, LIFT]), rot, CLOSED
            else:
                p, r, f = pos + np.array([0.0, 0.0, LIFT]), rot, CLOSED
            rows.append(np.concatenate([p, r[:, 0], r[:, 1], f]).astype(np.float32))
        phase = PHASE_OF_SEGMENT[seg]
        return torch.as_tensor(np.stack(rows), device=self.env.device), [phase] * self.env.num_envs
