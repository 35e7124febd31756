"""Human hand keypoints -> a robot hand's wrist pose and finger joint targets.

The fingers are dex-retargeting's position optimizer (NLopt SLSQP with torch gradients on pinocchio kinematics) on the
robot's own URDF from the mani_skill wheel: the robot's fingertips are pulled to the human fingertips expressed in the
wrist frame (scaled). dex-retargeting follows a mimic joint only to an actuated joint, and the Inspire hand's thumb tip
mimics a mimic, so the URDF it gets has each mimic chain folded into one relation (same kinematics; written once to
the user cache). The wrist pose is the human wrist's, turned from the human wrist frame into the robot's base frame.

Human wrist frame (as `generators.human` writes it, the Inspire convention): fingers along +y, thumb side +x, palm
normal +z for a right hand.
"""

from __future__ import annotations

import os
import time
import zlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FINGERS = ("thumb", "index", "middle", "ring", "little")


@dataclass(frozen=True)
class RobotHand:
    name: str
    urdf: str
    """relative to the mani_skill package"""
    tips: tuple[str | None, ...]
    """the robot's fingertip link per human finger (thumb, index, middle, ring, little); None: the robot has none"""
    joints: tuple[str, ...]
    """the finger joints, in the order of the robot's finger action"""
    wrist_link: str = ""
    """the link whose frame is the hand's wrist frame (the root link if empty)"""
    fixed: tuple[str, ...] = ()
    """joints the retargeting holds at zero (the Inspire hand's wrist pitch and yaw)"""
    human_to_robot: tuple[tuple[float, ...], ...] = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    """rotation taking human-wrist-frame coordinates to the robot wrist frame's"""
    size: float = 1.0
    """the robot hand's size over a human hand's: human fingertips are scaled by it (times the user's `scale`)"""
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """where the human wrist sits in the robot's wrist frame once scaled (the Allegro's base is at its knuckles)"""


HANDS = {
    "inspire_right": RobotHand(
        "inspire_right", "assets/robots/inspire_hand/RH56DFX-2LR/urdf/inspire_hand_right.urdf",
        tips=tuple(f"right_hand_{f}_tip" for f in ("thumb", "index", "middle", "ring", "pinky")),
        joints=("right_hand_thumb_CMC_yaw_joint", "right_hand_thumb_CMC_pitch_joint", "right_hand_index_MCP_joint",
                "right_hand_middle_MCP_joint", "right_hand_ring_MCP_joint", "right_hand_pinky_MCP_joint"),
        wrist_link="right_hand_hand_base_link",  # what the floating hand's pd_wrist_pose places
        fixed=("right_hand_wrist_pitch_joint", "right_hand_wrist_yaw_joint")),
    # Allegro base frame: fingers +z, palm normal +x, thumb side +y; it has no little finger
    "allegro_right": RobotHand(
        "allegro_right", "assets/robots/allegro/allegro_hand_right.urdf",
        tips=("link_15.0_tip", "link_3.0_tip", "link_7.0_tip", "link_11.0_tip", None),
        joints=tuple(f"joint_{i}.0" for i in range(16)),
        human_to_robot=((0, 0, 1), (1, 0, 0), (0, 1, 0)),
        # fingers about 1.45 times a human's; its base link sits at the knuckle line, not the wrist
        size=1.45, offset=(0.0, 0.0, -0.13)),
}


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dexsuite" / "retarget"


def folded_urdf(hand: RobotHand) -> Path:
    """The hand's URDF with every mimic chain folded into a relation to an actuated joint and absolute mesh paths."""
    import mani_skill

    src = Path(mani_skill.__file__).parent / hand.urdf
    if not src.exists():
        raise FileNotFoundError(f"{src}: the mani_skill wheel has no such URDF")
    # keyed by where the wheel is: the file holds absolute mesh paths into it, wrong for any other install
    key = zlib.crc32(str(src.resolve()).encode())
    out = _cache_dir() / f"{hand.name}.{key:08x}.urdf"
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    tree = ET.parse(src)
    mimic = {j.get("name"): j.find("mimic") for j in tree.getroot().iter("joint") if j.find("mimic") is not None}
    for m in mimic.values():
        joint, mul, off = m.get("joint"), float(m.get("multiplier", 1)), float(m.get("offset", 0))
        while joint in mimic:  # q = mul * (mul2 * q2 + off2) + off
            m2 = mimic[joint]
            joint, mul, off = m2.get("joint"), mul * float(m2.get("multiplier", 1)), mul * float(m2.get("offset", 0)) + off
        m.set("joint", joint)
        m.set("multiplier", repr(mul))
        m.set("offset", repr(off))
    for mesh in tree.getroot().iter("mesh"):
        fn = mesh.get("filename")
        if fn and not os.path.isabs(fn) and "://" not in fn:
            mesh.set("filename", str((src.parent / fn).resolve()))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    tree.write(tmp)
    os.replace(tmp, out)
    return out


class Retargeter:
    """One hand's retargeting, warm-started from the previous frame (call `reset()` between episodes)."""

    def __init__(self, hand: str = "inspire_right", scale: float = 1.0):
        from dex_retargeting.retargeting_config import RetargetingConfig

        if hand not in HANDS:
            raise ValueError(f"unknown hand {hand!r}; valid: {list(HANDS)}")
        self.hand = HANDS[hand]
        self.scale = float(scale) * self.hand.size
        self._offset = np.asarray(self.hand.offset, dtype=np.float64)
        self.used = [i for i, t in enumerate(self.hand.tips) if t is not None]
        tips = [self.hand.tips[i] for i in self.used]
        cfg = RetargetingConfig(type="position", urdf_path=str(folded_urdf(self.hand)), target_link_names=tips,
                                target_joint_names=list(self.hand.joints),
                                target_link_human_indices=np.arange(len(tips)), low_pass_alpha=1.0)
        self._seq = cfg.build()
        opt = self._seq.optimizer
        # frame-to-frame smoothness comes from the warm start; the optimizer's own pull toward the last solution
        # (its default) leaves centimetres of error where the hand moves fast
        opt.norm_delta = 1e-6
        opt.opt.set_ftol_abs(1e-7)  # tighter costs time for no fingertip accuracy (benchmarks.retarget)
        self._robot = opt.robot
        self._tip_idx = [self._robot.get_link_index(t) for t in tips]
        self._fixed = np.zeros(len(opt.idx_pin2fixed))
        names = list(opt.target_joint_names)
        self._order = np.array([names.index(j) for j in self.hand.joints])
        self.R = np.asarray(self.hand.human_to_robot, dtype=np.float64)
        # the URDF's root may sit below the wrist (the Inspire hand's wrist joints): targets go through the wrist link
        self._wrist = np.eye(4)
        if self.hand.wrist_link:
            self._robot.compute_forward_kinematics(np.zeros(self._robot.dof))
            self._wrist = self._robot.get_link_pose(self._robot.get_link_index(self.hand.wrist_link))
        self.latencies: list[float] = []
        self._start = self._seq.last_qpos.copy()

    @property
    def joint_limits(self) -> np.ndarray:
        """(n, 2) in the finger-action order."""
        return self._seq.joint_limits[self._order]

    def reset(self) -> None:
        self._seq.last_qpos = self._start.copy()

    def fingers(self, tips_wrist: np.ndarray) -> np.ndarray:
        """Finger joint targets (action order) whose fingertips reach `tips_wrist` (5, 3): the human fingertips in the
        human wrist frame, metres."""
        target = self._to_root(self._target(tips_wrist))
        t0 = time.perf_counter()
        full = self._seq.retarget(target, fixed_qpos=self._fixed)
        self.latencies.append(time.perf_counter() - t0)
        names = list(self._robot.dof_joint_names)
        q = np.array([full[names.index(j)] for j in self.hand.joints])
        lim = self.joint_limits  # the optimizer's bounds hold up to its float32 round-off
        return np.clip(q, lim[:, 0], lim[:, 1])

    def _target(self, tips_wrist: np.ndarray) -> np.ndarray:
        """Human fingertips (wrist frame) -> where the robot's fingertips should be (its wrist frame), used fingers."""
        return ((self.R @ (self.scale * np.asarray(tips_wrist, dtype=np.float64)).T).T + self._offset)[self.used]

    def human_from_robot(self, tips_robot: np.ndarray) -> np.ndarray:
        """The inverse of the target map: robot fingertips (wrist frame, used fingers) -> human fingertips (5, 3), the
        unused ones zero. For checks against the robot's own kinematics."""
        out = np.zeros((5, 3))
        out[self.used] = (self.R.T @ (np.asarray(tips_robot) - self._offset).T).T / self.scale
        return out

    def _to_root(self, p: np.ndarray) -> np.ndarray:
        return p @ self._wrist[:3, :3].T + self._wrist[:3, 3]

    def fingertips(self, q: np.ndarray) -> np.ndarray:
        """The robot's fingertips (k, 3) in its wrist frame at finger joints `q` (action order), mimic joints
        following."""
        opt = self._seq.optimizer
        full = np.zeros(self._robot.dof)
        target = np.zeros(len(opt.target_joint_names))
        target[self._order] = q
        full[opt.idx_pin2target] = target
        full[opt.idx_pin2fixed] = self._fixed
        if opt.adaptor is not None:
            full = opt.adaptor.forward_qpos(full)
        self._robot.compute_forward_kinematics(full)
        root = np.stack([self._robot.get_link_pose(i)[:3, 3] for i in self._tip_idx])
        return (root - self._wrist[:3, 3]) @ self._wrist[:3, :3]

    def error(self, tips_wrist: np.ndarray, q: np.ndarray) -> np.ndarray:
        """(k,) distance (m) between the robot's fingertips at `q` and the scaled human fingertips."""
        return np.linalg.norm(self.fingertips(q) - self._target(tips_wrist), axis=1)

    def wrist(self, human_wrist: np.ndarray) -> np.ndarray:
        """The robot base's world pose (4, 4) for a human wrist pose (4, 4): same origin, axes turned."""
        out = np.array(human_wrist, dtype=np.float64)
        out[:3, :3] = out[:3, :3] @ self.R.T
        return out

    def __call__(self, human_wrist: np.ndarray, tips_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(robot base pose (4, 4) in the world, finger joint targets) for one frame in world coordinates."""
        w = np.asarray(human_wrist, dtype=np.float64)
        local = (np.asarray(tips_world) - w[:3, 3]) @ w[:3, :3]
        return self.wrist(w), self.fingers(local)
