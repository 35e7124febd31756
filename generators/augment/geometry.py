"""Poses as 4x4 matrices, the symmetry match that keeps a carried approach on round and boxy objects, and the limits on
how far an interpolated wrist target moves per control step."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from dexenvs.experts.base import slerp

HAND_DIM = 15  # pd_wrist_pose per hand: position 3, rotation 6D 6, finger targets 6
MAX_STEP_POS = 0.02  # m per control step while interpolating (the seeds' own approach moves about as far)
MAX_STEP_ROT = 0.1  # rad per control step
STILL_POS, STILL_ROT = 0.003, 0.03  # a jump smaller than this needs no interpolation


def pose_matrix(pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, pos
    return m


def pose7_matrix(p7: np.ndarray) -> np.ndarray:
    """xyz + wxyz quaternion -> 4x4."""
    w, x, y, z = p7[3:7]
    return pose_matrix(p7[:3], Rotation.from_quat([x, y, z, w]).as_matrix())


def symmetric_match(ref_new: np.ndarray, ref_src: np.ndarray, order: int) -> np.ndarray:
    """`ref_new` turned about its own z axis, within the object's symmetry (0: any angle, n: multiples of 2pi/n), to be
    nearest `ref_src` in rotation."""
    if order == 1:
        return ref_new
    m = ref_new[:3, :3].T @ ref_src[:3, :3]
    phi = np.arctan2(m[1, 0] - m[0, 1], m[0, 0] + m[1, 1])  # the z-rotation nearest m
    if order > 1:
        phi = np.round(phi / (2 * np.pi / order)) * (2 * np.pi / order)
    out = ref_new.copy()
    out[:3, :3] = ref_new[:3, :3] @ Rotation.from_euler("z", phi).as_matrix()
    return out


def rotation_angle(r0: np.ndarray, r1: np.ndarray) -> float:
    return float(np.arccos(np.clip((np.trace(r0.T @ r1) - 1) / 2, -1, 1)))


def interpolate(m0: np.ndarray, m1: np.ndarray, s: float) -> np.ndarray:
    """The pose a fraction `s` of the way from `m0` to `m1` (linear in position, slerp in rotation)."""
    return pose_matrix(m0[:3, 3] + s * (m1[:3, 3] - m0[:3, 3]), slerp(m0[:3, :3], m1[:3, :3], s))


def interpolation_steps(moves: list[tuple[np.ndarray, np.ndarray]], at_least: int) -> int:
    """Control steps to move each hand from its first pose to its second within the step limits: 0 if none has to
    move, else at least `at_least`."""
    n = 0
    for m_from, m_to in moves:
        d = np.linalg.norm(m_to[:3, 3] - m_from[:3, 3])
        ang = rotation_angle(m_to[:3, :3], m_from[:3, :3])
        if d > STILL_POS or ang > STILL_ROT:
            n = max(n, at_least, int(np.ceil(d / MAX_STEP_POS)), int(np.ceil(ang / MAX_STEP_ROT)))
    return n
