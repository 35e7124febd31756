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
CLOSED = np.array([-1.3, -0.48, -1.34, -1.34, -1.34, -1.34], dtype=np.float32)
# side grasps: thumb yawed fully so it stands ~0.1 m in front of the palm and closes toward it (thumb-palm opposition)
PRESHAPE = np.array([-1.3, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)
SIDE_MIN_HEIGHT = 0.075
# where the object's reference point (side: centre; top: top) sits in the hand base frame at the grasp
# side grasp: object centre `along` the fingers, its near face `gap` in front of the palm surface (0.027); the wrist
# sits so the thumb (0.02 above the wrist frame) presses at `height` of the object's height, never lower than min_z
SIDE_GRASP = dict(along=0.125, gap=0.008, height=0.5, thumb_x=0.02, min_z=0.048, back_off=0.12)
# top pinch: the side of the index finger is `wall` from the wrist along the thumb axis; the object's top centre sits
# `along` the fingers and `below` the wrist frame (the palm surface is 0.027 below it)
TOP_GRASP = dict(wall=0.025, along=0.12, below=0.035, back_off=0.10)
PINCH_DEPTH = 0.03
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
            # palm vertical facing the object, fingers horizontal, thumb (+x) up and yawed to stand in front of the
            # palm; the hand comes down over the object so its upper part ends between palm and thumb
            approach = np.array([1.0, 0.0, 0.0])
            off = R_obj[:, :2] @ np.array(asset.center[:2])
            if asset.category == "box":  # face-on, across the narrower side, as close to +x as possible
                k = 0 if ex <= ey else 1
                approach = np.array([R_obj[0, k], R_obj[1, k], 0.0])
                approach = approach if approach[0] >= 0 else -approach
            elif np.linalg.norm(off) > 0.004:  # a handle: approach at right angles to it
                handle_dir = off / np.linalg.norm(off)
                approach = np.array([-handle_dir[1], handle_dir[0], 0.0])
                if approach[0] < 0:
                    approach = -approach
            fingers = np.cross(approach, np.array([0.0, 0.0, 1.0]))
            rot = _rot_from_axes(fingers, approach)
            depth = self._half_width(R_obj, asset, approach)
            local = np.array([0.0, g["along"], 0.027 + g["gap"] + depth])
            pos = center - rot @ local
            pos[2] = max(center[2] - h / 2 + g["height"] * h - g["thumb_x"], g["min_z"])
            return pos, rot, family
        else:
            # palm down; the top part of the object is pinched between the thumb and the side of the index finger,
            # so the thumb closes across the object's narrower top dimension
            top_pts = self._top_slice(asset)  # object-frame xy of the top `PINCH_DEPTH` of the mesh
            span = top_pts.max(0) - top_pts.min(0)
            axis_local = np.array([1.0, 0.0, 0.0]) if span[0] <= span[1] else np.array([0.0, 1.0, 0.0])
            thumb = R_obj @ axis_local
            thumb = np.array([thumb[0], thumb[1], 0.0]) / max(np.linalg.norm(thumb[:2]), 1e-6)
            fingers = np.cross(thumb, np.array([0.0, 0.0, -1.0]))  # x = y cross z  =>  y = z cross x
            fingers = -fingers
            if fingers[0] < 0:  # fingers point away from the robot; flip the thumb with them
                fingers, thumb = -fingers, -thumb
            rot = _rot_from_axes(fingers, np.array([0.0, 0.0, -1.0]))
            mid = (top_pts.max(0) + top_pts.min(0)) / 2
            top_c = env.obj.pose.p[i].cpu().numpy() + R_obj @ np.array([mid[0], mid[1], h])
            half = 0.5 * (span[0] if span[0] <= span[1] else span[1])
            point = top_c
            depth = 0.0
            local = np.array([g["wall"] + half, g["along"], g["below"]])
            pos = point - rot @ local
            return pos, rot, family
        local = np.array(g["point"]) + np.array([0.0, 0.0, depth])
        pos = point - rot @ local
        pos[2] = max(pos[2], g.get("min_z", -1.0))
        return pos, rot, family

    _slices: dict = {}

    @classmethod
    def _top_slice(cls, asset) -> np.ndarray:
        """xy (object frame) of the mesh vertices in the object's top PINCH_DEPTH: the part the pinch holds."""
        if asset.id not in cls._slices:
            import trimesh

            v = trimesh.load(asset.visual_file, force="mesh").vertices
            top = v[v[:, 2] >= v[:, 2].max() - PINCH_DEPTH]
            cls._slices[asset.id] = top[:, :2]
        return cls._slices[asset.id]

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
            if family == "side":  # come down from above: the thumb stands in front of the palm
                pre = pos + np.array([0.0, 0.0, SIDE_GRASP["back_off"]])
            else:
                pre = pos - rot[:, 2] * TOP_GRASP["back_off"]
            if seg == "pre":
                p0, r0 = self.start[i]
                p, r, f = p0 + smooth * (pre - p0), _slerp(r0, rot, smooth), (PRESHAPE if family == "side" else OPEN) * smooth
            elif seg == "approach":
                p, r, f = pre + s * (pos - pre), rot, PRESHAPE if family == "side" else OPEN
            elif seg == "close":
                shape = PRESHAPE if family == "side" else OPEN
                p, r, f = pos, rot, shape + s * (CLOSED - shape)
            elif seg == "lift":
                p, r, f = pos + smooth * np.array([0.0, 0.0, LIFT]), rot, CLOSED
            else:
                p, r, f = pos + np.array([0.0, 0.0, LIFT]), rot, CLOSED
            rows.append(np.concatenate([p, r[:, 0], r[:, 1], f]).astype(np.float32))
        phase = PHASE_OF_SEGMENT[seg]
        return torch.as_tensor(np.stack(rows), device=self.env.device), [phase] * self.env.num_envs
