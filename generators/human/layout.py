"""The EgoDex layout, as the reader checks it and the stand-in generator writes it, and EgoDex's 48-D action.

An episode is `<task>/<i>.hdf5` with its egocentric video `<task>/<i>.mp4`, both at 30 Hz. The HDF5 file holds

- `transforms/<joint>`: (N, 4, 4) world SE(3) poses of `camera` and of every joint in `JOINTS`;
- `confidences/<joint>`: (N,) in [0, 1] for every joint (0: fully occluded). A hand's wrist confidence says whether
  the hand is detected at all; a finger joint's is relative to its wrist, so a fingertip counts only where both are
  high (`keypoint_masks`);
- `camera/intrinsic`: (3, 3), constant over the episode;
- file attributes `llm_description` (the language description) and `task`.

Optional, beyond EgoDex (which tracks no objects): `transforms/object` (N, 4, 4), the manipulated object's world pose
as an object tracker would give it, and the attribute `world_up`, the world's up axis (ARKit's, +y, when absent).
Co-training a state policy on human data needs both (`generators.human.to_robot`).

Frames: a joint's pose is expressed in the camera frame of step t as inv(T_camera[t]) @ T_joint[t]. The camera frame
follows the pinhole convention the intrinsic applies to: x right, y down, z forward (u = fx x / z + cx), which is how
EgoDex's camera-frame points are projected with its intrinsic.

The action of a step (`action_in_frame`) is 48-D: for each hand, left then right, the wrist position (3), the wrist's
6D rotation, i.e. the first two columns of its rotation matrix concatenated (col0, col1) (6), and the five fingertip
positions, thumb, index, middle, ring, little (15); everything in the camera frame (`ACTION_NAMES` labels each entry).
"""

from __future__ import annotations

import numpy as np

FPS = 30
OBJECT = "object"
ARKIT_UP = (0.0, 1.0, 0.0)
SIDES = ("left", "right")
FINGERS = ("Thumb", "Index", "Middle", "Ring", "Little")
FINGER_PARTS = ("Metacarpal", "Knuckle", "IntermediateBase", "IntermediateTip", "Tip")
THUMB_PARTS = ("Knuckle", "IntermediateBase", "IntermediateTip", "Tip")  # the thumb has no metacarpal joint

UPPER_BODY = (("hip",) + tuple(f"spine{i}" for i in range(1, 8)) + tuple(f"neck{i}" for i in range(1, 5))
              + tuple(f"{s}{part}" for s in SIDES for part in ("Shoulder", "Arm", "Forearm", "Hand")))
"""`leftHand` and `rightHand` are the wrists: the arm chain's end and each hand's root."""


def wrist(side: str) -> str:
    return f"{side}Hand"


def finger_joints(side: str, finger: str) -> tuple[str, ...]:
    """One finger's joints from the palm out, e.g. `rightIndexFingerMetacarpal` ... `rightIndexFingerTip`."""
    if finger == "Thumb":
        return tuple(f"{side}Thumb{p}" for p in THUMB_PARTS)
    return tuple(f"{side}{finger}Finger{p}" for p in FINGER_PARTS)


def fingertip(side: str, finger: str) -> str:
    return finger_joints(side, finger)[-1]


def hand_joints(side: str) -> tuple[str, ...]:
    """The 24 joints of one hand below its wrist (the paper's 25 count the wrist)."""
    return tuple(j for f in FINGERS for j in finger_joints(side, f))


JOINTS = UPPER_BODY + hand_joints("left") + hand_joints("right")
"""Every skeletal joint (68); each has a transform and a confidence."""
CAMERA = "camera"
INTRINSIC = "camera/intrinsic"

KEYPOINTS = tuple(j for s in SIDES for j in (wrist(s),) + tuple(fingertip(s, f) for f in FINGERS))
"""The 12 joints the action is made of, in action order: per hand (left, right), the wrist then the five tips."""
ACTION_DIM = 48
ACTION_NAMES = tuple(
    f"{s}_{what}" for s in SIDES for what in
    [f"wrist_{a}" for a in "xyz"] + [f"wrist_rot_c{c}{a}" for c in (0, 1) for a in "xyz"]
    + [f"{f.lower()}_tip_{a}" for f in FINGERS for a in "xyz"])

IMAGE_SIZE = (1920, 1080)  # width, height the intrinsic refers to
DEFAULT_INTRINSIC = np.array([[736.6339, 0.0, 960.0], [0.0, 736.6339, 540.0], [0.0, 0.0, 1.0]])
"""EgoDex's camera (the same in every file): a wide field of view, about 105 x 72 degrees."""


def rot6d(rot: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): columns 0 and 1 concatenated."""
    return np.concatenate([rot[..., :, 0], rot[..., :, 1]], axis=-1)


def action_in_frame(camera: np.ndarray, wrists: np.ndarray, tips: np.ndarray) -> np.ndarray:
    """The 48-D action of M steps in the camera frame(s) `camera`: (M, 4, 4), or one (4, 4) for all of them.

    wrists: (M, 2, 4, 4) world poses of the left and right wrist; tips: (M, 2, 5, 3) world fingertip positions (thumb,
    index, middle, ring, little). Returns (M, 48) float32."""
    inv = np.linalg.inv(np.asarray(camera, dtype=np.float64))
    if inv.ndim == 2:
        inv = np.broadcast_to(inv, (len(wrists), 4, 4))
    w = inv[:, None] @ np.asarray(wrists, dtype=np.float64)  # (M, 2, 4, 4)
    p = np.einsum("mij,mhkj->mhki", inv[:, :3, :3], np.asarray(tips, dtype=np.float64)) + inv[:, None, None, :3, 3]
    per_hand = np.concatenate([w[..., :3, 3], rot6d(w[..., :3, :3]), p.reshape(len(w), 2, 15)], axis=-1)
    return per_hand.reshape(len(w), ACTION_DIM).astype(np.float32)


def keypoint_masks(wrist_conf: np.ndarray, tip_conf: np.ndarray, threshold: float) -> np.ndarray:
    """(N, 12) usable keypoints from wrist confidences (N, 2) and fingertip confidences (N, 2, 5): a wrist where its
    confidence exceeds `threshold`, a fingertip where both its own and its wrist's do (finger confidences are relative
    to the wrist: a confident fingertip on an undetected hand is not a detection)."""
    w = wrist_conf > threshold
    t = (np.minimum(wrist_conf[..., None], tip_conf) > threshold)
    return np.concatenate([w[..., None], t], axis=-1).reshape(len(w), len(KEYPOINTS))
