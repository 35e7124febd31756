"""Scripted expert for DexGrasp-v0 in the `pd_wrist_pose` mode: a grasp computed from the object's pose and geometry,
then approach, close, lift, hold. Every step carries a phase label (approach, grasp, lift, hold) for later generators.

The grasp is a thumb-palm side grasp, the one this hand does reliably (found by searching grasp offsets in sim): the palm
is vertical and faces the object, the fingers are horizontal, and the thumb is on top, yawed fully so that it stands
~0.1 m in front of the palm and closes toward it. The hand comes down over the object so that the object's upper part
ends between palm and thumb, then thumb and fingers close and the hand lifts. Boxes are approached face-on across their
narrower side, objects with a handle at right angles to it. Hand base frame: fingers +y, palm normal +z (the palm
surface is 0.027 m out), thumb side +x. The hand's pinky side hangs ~4.5 cm below the wrist frame, so objects under
~7.5 cm are out of reach of this grasp; DexGrasp-v0 uses only taller, standing objects.
"""

from __future__ import annotations

import numpy as np
import torch

from dexenvs.base import hand_rotation
from dexenvs.experts.base import ScriptedExpert, slerp
from dexenvs.robots import quat_to_matrix

PHASES = ("approach", "grasp", "lift", "hold")
# finger targets: thumb CMC yaw, thumb CMC pitch, index, middle, ring, pinky (radians; closing is negative)
PRESHAPE = np.array([-1.3, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)  # thumb yawed to face the palm
CLOSED = np.array([-1.3, -0.48, -1.34, -1.34, -1.34, -1.34], dtype=np.float32)
# object centre `along` the fingers with its near face `gap` in front of the palm surface; the wrist sits so the thumb
# (0.02 above the wrist frame) presses at `height` of the object's height, never lower than min_z; the hand starts its
# descent `back_off` above the grasp
GRASP = dict(along=0.125, gap=0.008, height=0.5, thumb_x=0.02, min_z=0.048, back_off=0.12)
PALM_SURFACE = 0.027
SEGMENTS = dict(pre=18, approach=14, close=30, lift=24, hold=20)
PHASE_OF_SEGMENT = dict(pre="approach", approach="approach", close="grasp", lift="lift", hold="hold")
LIFT = 0.32


def side_grasp(env, i: int, approach: np.ndarray, palm_sign: float, min_z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wrist position and rotation of the thumb-palm side grasp of sub-env i's object, approached along the
    horizontal `approach` (palm facing it, thumb on top), the wrist no lower than `min_z`."""
    asset = env._assets[i]
    R_obj = quat_to_matrix(env.obj.pose.q[i : i + 1])[0].cpu().numpy()
    center = env.obj_center()[i].cpu().numpy()
    h = asset.extents[2]
    approach = np.asarray(approach, dtype=np.float64) / np.linalg.norm(approach)
    # a left hand (palm_sign -1) is mirrored: its fingers point the other way for its thumb to be on top too
    rot = hand_rotation(palm_sign * np.cross(approach, [0.0, 0.0, 1.0]), approach, palm_sign)
    depth = _half_width(R_obj, asset, approach)
    pos = center - rot @ np.array([0.0, GRASP["along"], palm_sign * (PALM_SURFACE + GRASP["gap"] + depth)])
    pos[2] = max(center[2] - h / 2 + GRASP["height"] * h - GRASP["thumb_x"], min_z)
    return pos, rot


def approach_and_close(seg: str, s: float, start: tuple, pos: np.ndarray, rot: np.ndarray):
    """Wrist pose and finger targets of the side grasp's first three segments, shared by the experts that use it:
    `pre` (from the start pose to above the grasp, thumb yawing in), `approach` (straight down onto it), `close`.
    Returns None for any later segment."""
    pre = pos + np.array([0.0, 0.0, GRASP["back_off"]])  # come down from above: the thumb stands out front
    if seg == "pre":
        smooth = ScriptedExpert.smooth(s)
        return start[0] + smooth * (pre - start[0]), slerp(start[1], rot, smooth), PRESHAPE * smooth
    if seg == "approach":
        return pre + s * (pos - pre), rot, PRESHAPE
    if seg == "close":
        return pos, rot, PRESHAPE + s * (CLOSED - PRESHAPE)
    return None


def _half_width(R_obj, asset, direction) -> float:
    """Half the object's depth along a horizontal direction (boxes by their faces, round things by radius)."""
    ex, ey, _ = asset.extents
    d_local = R_obj.T @ direction
    if asset.category == "box":
        return 0.5 * (abs(d_local[0]) * ex + abs(d_local[1]) * ey)
    return 0.5 * min(ex, ey)


class GraspExpert(ScriptedExpert):
    """Batched over the env's sub-envs; re-plans the grasp from the live object pose until the fingers close."""

    segments = SEGMENTS
    phase_of_segment = PHASE_OF_SEGMENT

    def grasp_pose(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """World wrist position and rotation of the grasp for sub-env i: from the robot's side, boxes face-on across
        their narrower side, objects with a handle at right angles to it."""
        env = self.env
        asset = env._assets[i]
        R_obj = quat_to_matrix(env.obj.pose.q[i : i + 1])[0].cpu().numpy()
        ex, ey, _ = asset.extents
        approach = np.array([1.0, 0.0, 0.0])
        off = R_obj[:, :2] @ np.array(asset.center[:2])
        if asset.category == "box":
            k = 0 if ex <= ey else 1
            approach = np.array([R_obj[0, k], R_obj[1, k], 0.0])
        elif np.linalg.norm(off) > 0.004:  # a handle pulls the bbox centre off the axis
            handle_dir = off / np.linalg.norm(off)
            approach = np.array([-handle_dir[1], handle_dir[0], 0.0])
        approach = approach if approach[0] >= 0 else -approach
        return side_grasp(env, i, approach, env._hands[0].palm_sign, GRASP["min_z"])

    def act(self, obs=None) -> tuple[torch.Tensor, list[str]]:
        """The next `pd_wrist_pose` action (num_envs, 15) and each env's phase label."""
        seg, s = self.segment(self.t)
        self.t += 1
        smooth = self.smooth(s)
        rows = []  # (position, rotation, finger targets) per sub-env
        for i in range(self.env.num_envs):
            if seg in ("pre", "approach") or self.frozen[i] is None:
                self.frozen[i] = self.grasp_pose(i)
            pos, rot = self.frozen[i]
            lift = (smooth if seg == "lift" else 1.0) * np.array([0.0, 0.0, LIFT])
            rows.append(approach_and_close(seg, s, self.start[0][i], pos, rot) or (pos + lift, rot, CLOSED))
        pos, rot, fingers = (torch.as_tensor(np.stack(x), dtype=torch.float32, device=self.env.device) for x in zip(*rows))
        return self.env.wrist_action(pos, rot, fingers), [PHASE_OF_SEGMENT[seg]] * self.env.num_envs
