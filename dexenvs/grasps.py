"""The on-disk grasp set: what `python -m generators.grasps` writes and in-hand tasks read.

One `.npz` per (hand, object), written atomically. Arrays, one row per grasp, all in the hand's base frame:
`q` (N, J) joint positions in the hand's action order, `target` (N, J) the joint drive targets that hold the grasp
(contact fingers pressed a few millimetres into the surface, as validated), `obj_pos` (N, 3) and `obj_quat` (N, 4, wxyz) the object's pose,
`fingers` (N, F) which fingers touch it, `contacts` / `normals` (N, F, 3) where (object frame), `penetration`,
`hold_move`, `hold_turn` (N,) the validation's metrics, and `knn` / `knn_dist` (N, K): each grasp's nearest grasps by
`pose_distance` (goal sampling). `meta` (a JSON string) records the object, hand, commit and settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dexenvs.results import atomic_write

POS_TOL, ROT_TOL = 0.01, 0.1  # the in-hand success tolerance (IsaacGymEnvs / Isaac Lab): 1 cm and 0.1 rad
FIELDS = ("q", "target", "obj_pos", "obj_quat", "fingers", "contacts", "normals", "penetration", "hold_move",
          "hold_turn")


def quat_angle(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Rotation angle (rad) between unit quaternions (..., 4)."""
    return 2 * np.arccos(np.clip(np.abs((q1 * q2).sum(-1)), 0.0, 1.0))


def pose_distance(p1, q1, p2, q2) -> np.ndarray:
    """Distance between object poses in units of the success tolerance: 1 is 1 cm, or 0.1 rad, apart."""
    return np.sqrt((np.linalg.norm(p1 - p2, axis=-1) / POS_TOL) ** 2 + (quat_angle(q1, q2) / ROT_TOL) ** 2)


def _features(pos: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """Euclidean coordinates approximating `pose_distance` (|R1 - R2|_F = 2 sqrt(2) sin(angle / 2))."""
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_quat(quat, scalar_first=True).as_matrix().reshape(len(quat), 9)
    return np.concatenate([pos / POS_TOL, rot / (np.sqrt(2) * ROT_TOL)], 1)


@dataclass
class GraspSet:
    arrays: dict[str, np.ndarray]
    meta: dict

    def __len__(self) -> int:
        return len(self.arrays["q"])

    def __getattr__(self, name):
        if name in ("arrays", "meta"):
            raise AttributeError(name)
        try:
            return self.arrays[name]
        except KeyError:
            raise AttributeError(name) from None

    def with_knn(self, k: int = 16) -> "GraspSet":
        from scipy.spatial import cKDTree

        feats = _features(self.arrays["obj_pos"], self.arrays["obj_quat"])
        k = min(k, len(self) - 1)
        if k < 1:
            raise ValueError(f"a grasp set needs at least 2 grasps for goals, got {len(self)}")
        _, idx = cKDTree(feats).query(feats, k + 1)
        idx = idx[:, 1:]
        dist = pose_distance(self.arrays["obj_pos"][:, None], self.arrays["obj_quat"][:, None],
                             self.arrays["obj_pos"][idx], self.arrays["obj_quat"][idx])
        order = np.argsort(dist, 1)
        return GraspSet(dict(self.arrays, knn=np.take_along_axis(idx, order, 1).astype(np.int32),
                             knn_dist=np.take_along_axis(dist, order, 1).astype(np.float32)), self.meta)

    def goals(self, i: int, low: float, high: float) -> np.ndarray:
        """Indices of grasp i's neighbours whose pose distance lies in [low, high]."""
        d = self.arrays["knn_dist"][i]
        return self.arrays["knn"][i][(d >= low) & (d <= high)]

    def save(self, path: Path) -> None:
        with atomic_write(path) as tmp:
            np.savez_compressed(tmp, meta=np.array(json.dumps(self.meta)), **self.arrays)

    @staticmethod
    def load(path: Path) -> "GraspSet":
        with np.load(Path(path)) as z:
            arrays = {k: z[k] for k in z.files if k != "meta"}
            meta = json.loads(str(z["meta"]))
        missing = set(FIELDS) - set(arrays)
        if missing:
            raise ValueError(f"{path}: not a grasp set (missing {sorted(missing)})")
        return GraspSet(arrays, meta)
