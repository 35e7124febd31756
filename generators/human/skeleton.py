"""The stand-in's human: a kinematic hand skeleton on a robot hand's wrist and fingertip paths, a seated upper body,
an egocentric head camera, and the tracker-like capture noise laid over them (see `generators.human.standin`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from generators.human import layout

# ---- the skeleton model -----------------------------------------------------------------------------------------
# Hand-frame offsets (m) of the right hand (x thumb side, y along the fingers, z out of the palm); the left hand
# negates z. Bone lengths are an adult hand's; the knuckles sit where the Inspire hand's fingers start.
KNUCKLE = dict(Thumb=(0.025, 0.030, 0.012), Index=(0.030, 0.095, 0.005), Middle=(0.009, 0.098, 0.005),
               Ring=(-0.012, 0.093, 0.005), Little=(-0.031, 0.085, 0.005))
METACARPAL = dict(Index=(0.020, 0.025, 0.0), Middle=(0.006, 0.027, 0.0), Ring=(-0.009, 0.026, 0.0),
                  Little=(-0.022, 0.024, 0.0))
BONES = dict(Thumb=(0.055, 0.039, 0.032), Index=(0.045, 0.026, 0.021), Middle=(0.049, 0.030, 0.023),
             Ring=(0.046, 0.029, 0.023), Little=(0.037, 0.021, 0.020))
"""knuckle -> IntermediateBase, IntermediateBase -> IntermediateTip, IntermediateTip -> Tip"""
REST_TIPS = ((0.085, 0.105, 0.030), (0.032, 0.180, 0.020), (0.010, 0.188, 0.020), (-0.012, 0.180, 0.020),
             (-0.033, 0.160, 0.015))
"""fingertips of a relaxed, slightly curled hand (thumb .. little), for a hand resting on the table"""
# Upper body in the head's frame (forward, left, up) from the eye, a person seated at the table leaning in.
NECK = ((-0.10, 0.0, -0.21), (-0.07, 0.0, -0.09))  # neck1 .. neck4
SPINE = ((-0.17, 0.0, -0.65), (-0.11, 0.0, -0.25))  # spine1 .. spine7
HIP = (-0.18, 0.0, -0.72)
CLAVICLE = (-0.10, 0.03, -0.26)  # `<side>Shoulder`, y toward its side
SHOULDER = (-0.08, 0.18, -0.27)  # `<side>Arm`
ARM_BONES = (0.32, 0.27)  # upper arm, forearm
REST_WRIST = (0.30, 0.22, 0.03)  # an unused hand: forward of the eye, toward its side, height above the table top


@dataclass(frozen=True)
class CaptureNoise:
    """What a hand tracker does to clean poses, at `--noise 1`."""

    wrist_sigma: float = 0.002  # m, per frame
    finger_sigma: float = 0.003
    tip_sigma: float = 0.005
    body_sigma: float = 0.004
    occlusion_rate: float = 0.15  # occlusion spans per fingertip per second
    occlusion_s: tuple[float, float] = (0.15, 0.8)
    hand_loss: float = 0.2  # chance per episode that a used hand is lost for one span
    hand_loss_s: tuple[float, float] = (0.3, 1.0)
    confidence_jitter: float = 0.04
    object_sigma: float = 0.003  # m, an object pose tracker's jitter

    def scaled(self, s: float) -> "CaptureNoise":
        return replace(self, wrist_sigma=self.wrist_sigma * s, finger_sigma=self.finger_sigma * s,
                       tip_sigma=self.tip_sigma * s, body_sigma=self.body_sigma * s,
                       occlusion_rate=self.occlusion_rate * s, hand_loss=min(1.0, self.hand_loss * s),
                       confidence_jitter=self.confidence_jitter * s, object_sigma=self.object_sigma * s)


BASE_CONFIDENCE = dict(wrist=0.95, finger=0.9, tip=0.8, body=0.9)


# ---- geometry helpers -------------------------------------------------------------------------------------------
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def pose(pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """(N, 3) and (N, 3, 3) (or one (3, 3)) -> (N, 4, 4)."""
    out = np.zeros((len(pos), 4, 4))
    out[:, :3, :3] = rot
    out[:, :3, 3] = pos
    out[:, 3, 3] = 1.0
    return out


def two_link(base: np.ndarray, tip: np.ndarray, l1: float, l2: float, pole: np.ndarray) -> np.ndarray:
    """The middle joint (N, 3) of a two-bone chain from `base` to `tip` (N, 3), bones `l1` and `l2`, bent in the plane
    of base->tip and `pole` (N, 3), toward the pole. The tip is data and the bone lengths a model, so a tip beyond
    reach straightens the chain (bones stretched in proportion) and one too near folds it as far as the lengths
    allow."""
    d = tip - base
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    u = d / np.maximum(dist, 1e-9)
    reach = l1 + l2
    dc = np.clip(dist, abs(l1 - l2) + 1e-6, reach)
    along = (l1 ** 2 - l2 ** 2 + dc ** 2) / (2 * dc)
    across = np.sqrt(np.maximum(l1 ** 2 - along ** 2, 0.0))
    p = pole - np.sum(pole * u, -1, keepdims=True) * u
    p = _unit(p)
    straight = dist >= reach
    return base + u * np.where(straight, dist * l1 / reach, along) + p * np.where(straight, 0.0, across)


def resample(values: np.ndarray, src_hz: float, n_out: int, dst_hz: float = layout.FPS) -> np.ndarray:
    """Linear resampling along axis 0 from `src_hz` to `n_out` samples at `dst_hz`."""
    x = np.arange(n_out) * src_hz / dst_hz
    i = np.minimum(np.floor(x).astype(int), len(values) - 2)
    w = (x - i).reshape((-1,) + (1,) * (values.ndim - 1))
    return values[i] * (1 - w) + values[i + 1] * w


def resample_rotations(rots: np.ndarray, src_hz: float, n_out: int, dst_hz: float = layout.FPS) -> np.ndarray:
    """(n, 3, 3) -> (n_out, 3, 3) by slerp."""
    from scipy.spatial.transform import Rotation, Slerp

    t = np.arange(len(rots)) / src_hz
    return Slerp(t, Rotation.from_matrix(rots))(np.minimum(np.arange(n_out) / dst_hz, t[-1])).as_matrix()


def frames_at(n_sim: int, sim_hz: float) -> int:
    """How many 30 Hz frames span `n_sim` samples at `sim_hz` (both ends included)."""
    return int(np.floor((n_sim - 1) * layout.FPS / sim_hz + 1e-9)) + 1


def look_at(eye: np.ndarray, target: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(N, 3, 3) camera rotations, columns x right, y down, z forward, rolled `roll` (N,) rad about z."""
    z = _unit(target - eye)
    x = _unit(np.cross(z, [0.0, 0.0, 1.0]))
    y = np.cross(z, x)
    c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
    return np.stack([c * x + s * y, -s * x + c * y, z], -1)


# ---- the egocentric camera --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeadPath:
    """The head camera as a smooth function of time: an eye and a gaze target, each swaying by two slow sinusoids per
    axis, and a slowly rolling head. A function of time (not a sampled path) so the video, rendered at the control
    rate, and the 30 Hz camera transforms come from one path."""

    eye: np.ndarray  # (3,) the eye at rest
    target: np.ndarray  # (3,) what it looks at
    amp: np.ndarray  # (2, 3, 2): eye/target, axis, sinusoid
    freq: np.ndarray  # Hz, same shape
    phase: np.ndarray
    roll: np.ndarray  # (3,): amplitude rad, frequency Hz, phase

    @classmethod
    def draw(cls, rng: np.random.Generator, focus: np.ndarray) -> "HeadPath":
        """A head looking at `focus` (the object) from the table's near side (-x), near enough that the object is
        within a seated person's reach: with the object near the workspace's centre the head is over the table's near
        edge (x = -0.6) and the hips behind it."""
        eye = np.array([focus[0] - rng.uniform(0.45, 0.58), 0.5 * focus[1] + rng.uniform(-0.12, 0.12),
                        rng.uniform(0.42, 0.56)])
        target = focus + np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), rng.uniform(-0.03, 0.06)])
        amp = rng.uniform(0.003, 0.012, (2, 3, 2)) * np.array([1.0, 2.5])[:, None, None]
        return cls(eye, target, amp, rng.uniform(0.08, 0.4, (2, 3, 2)), rng.uniform(0, 2 * np.pi, (2, 3, 2)),
                   np.array([rng.uniform(0.0, 0.04), rng.uniform(0.05, 0.25), rng.uniform(0, 2 * np.pi)]))

    def heading(self) -> np.ndarray:
        """(3, 3) the body's frame at rest: columns forward (horizontal, toward the target), left, up."""
        f = self.target - self.eye
        f = _unit(np.array([f[0], f[1], 0.0]))
        up = np.array([0.0, 0.0, 1.0])
        return np.stack([f, np.cross(up, f), up], 1)

    def poses(self, times: np.ndarray) -> np.ndarray:
        """(len(times), 4, 4) world camera poses at `times` (s)."""
        t = np.asarray(times, dtype=np.float64)[:, None, None, None]
        sway = (self.amp * np.sin(2 * np.pi * self.freq * t + self.phase)).sum(-1)  # (M, 2, 3)
        roll = self.roll[0] * np.sin(2 * np.pi * self.roll[1] * t[:, 0, 0, 0] + self.roll[2])
        eye = self.eye + sway[:, 0]
        return pose(eye, look_at(eye, self.target + sway[:, 1], roll))


# ---- the human skeleton -----------------------------------------------------------------------------------------
def _local(offset, palm_sign: float) -> np.ndarray:
    return np.array(offset, dtype=np.float64) * np.array([1.0, 1.0, palm_sign])


def hand_skeleton(wrist: np.ndarray, tips: np.ndarray, side: str) -> dict[str, np.ndarray]:
    """World poses (N, 4, 4) of a hand's wrist and 24 joints from its wrist poses (N, 4, 4) and fingertips (N, 5, 3),
    thumb .. little (already at human scale). Every joint carries the wrist's rotation."""
    sign = 1.0 if side == "right" else -1.0
    rot, origin = wrist[:, :3, :3], wrist[:, :3, 3]

    def at(offset) -> np.ndarray:
        return origin + rot @ _local(offset, sign)

    dorsal = rot @ _local((0.0, 0.0, -1.0), sign)  # the back of the hand: where bent fingers' joints stick out
    out = {layout.wrist(side): wrist}
    for k, finger in enumerate(layout.FINGERS):
        prox, mid, dist = BONES[finger]
        knuckle, tip = at(KNUCKLE[finger]), tips[:, k]
        pole = _unit(dorsal + (rot @ _local((1.0, 0.0, 0.0), sign) if finger == "Thumb" else 0.0))
        j1 = two_link(knuckle, tip, prox, mid + dist, pole)
        j2 = j1 + (tip - j1) * mid / (mid + dist)
        chain = ([] if finger == "Thumb" else [at(METACARPAL[finger])]) + [knuckle, j1, j2, tip]
        for name, p in zip(layout.finger_joints(side, finger), chain):
            out[name] = pose(p, rot)
    return out


def resting_hand(head: HeadPath, side: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """An unused hand lying palm down on the table beside the body: wrist poses (n, 4, 4), fingertips (n, 5, 3)."""
    from dexenvs.base import hand_rotation

    sign = 1.0 if side == "right" else -1.0
    body = head.heading()
    lateral = REST_WRIST[1] * (1.0 if side == "left" else -1.0)
    pos = head.eye + body @ np.array([REST_WRIST[0], lateral, 0.0])
    pos[2] = REST_WRIST[2]
    rot = hand_rotation(fingers=body[:, 0], palm=(0.0, 0.0, -1.0), palm_sign=sign)
    tips = pos + np.array([_local(t, sign) for t in REST_TIPS]) @ rot.T
    return pose(np.repeat(pos[None], n, 0), rot), np.repeat(tips[None], n, 0)


def upper_body(head: HeadPath, wrists: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """World poses (N, 4, 4) of the 18 upper-body joints above the wrists: a static torso under the head at rest, and
    each elbow by two-link IK from its shoulder to its wrist (N, 3). They carry the body's heading rotation. A robot
    hand reaches where a seated person's cannot (around the far side of an object): there the arm straightens and
    stretches, since the wrist is the data."""
    body = head.heading()
    n = len(next(iter(wrists.values())))

    def at(offset, side: str = "left") -> np.ndarray:
        o = np.array(offset) * np.array([1.0, 1.0 if side == "left" else -1.0, 1.0])
        return np.repeat((head.eye + body @ o)[None], n, 0)

    out = {"hip": at(HIP)}
    for name, a, b in (("spine", *SPINE), ("neck", *NECK)):
        count = 7 if name == "spine" else 4
        for i, w in enumerate(np.linspace(0.0, 1.0, count)):
            out[f"{name}{i + 1}"] = at(np.asarray(a) + w * (np.asarray(b) - np.asarray(a)))
    for side in layout.SIDES:
        out[f"{side}Shoulder"] = at(CLAVICLE, side)
        out[f"{side}Arm"] = shoulder = at(SHOULDER, side)
        outward = body[:, 1] * (1.0 if side == "left" else -1.0)
        pole = np.repeat(_unit(-body[:, 2] + 0.5 * outward - 0.3 * body[:, 0])[None], n, 0)
        out[f"{side}Forearm"] = two_link(shoulder, wrists[side], *ARM_BONES, pole)
    return {k: pose(v, body) for k, v in out.items()}


# ---- capture noise ----------------------------------------------------------------------------------------------
def joint_kind(joint: str) -> str:
    if joint in (layout.wrist("left"), layout.wrist("right")):
        return "wrist"
    if joint.endswith("Tip") and "Intermediate" not in joint:
        return "tip"
    return "finger" if joint in layout.hand_joints("left") + layout.hand_joints("right") else "body"


def _spans(rng: np.random.Generator, n: int, count: int, seconds: tuple[float, float]) -> list[tuple[int, int]]:
    out = []
    for _ in range(count):
        a = int(rng.integers(0, n))
        out.append((a, min(n, a + max(1, int(round(rng.uniform(*seconds) * layout.FPS))))))
    return out


def _freeze(poses: np.ndarray, span: tuple[int, int]) -> None:
    """A tracker that loses a joint keeps reporting where it last saw it."""
    a, b = span
    poses[a:b] = poses[a]


def in_view(points: np.ndarray, inv_camera: np.ndarray, intrinsic: np.ndarray) -> np.ndarray:
    """(N,) whether world points (N, 3) project inside the image of the cameras whose inverse poses are `inv_camera`
    (N, 4, 4)."""
    inv = inv_camera
    p = np.einsum("nij,nj->ni", inv[:, :3, :3], points) + inv[:, :3, 3]
    z = p[:, 2]
    uv = (p @ intrinsic.T)[:, :2] / np.maximum(z, 1e-9)[:, None]
    w, h = layout.IMAGE_SIZE
    return (z > 0.05) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)


def capture(joints: dict[str, np.ndarray], camera: np.ndarray, used: dict[str, bool], noise: CaptureNoise,
            rng: np.random.Generator, intrinsic: np.ndarray = layout.DEFAULT_INTRINSIC
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Clean joint poses -> (tracked poses, confidences), both by joint name. Confidences: a jittered base per kind
    of joint; 0 for a hand the task does not use, for hand joints outside the view, for occluded distal finger
    joints and for a lost hand. Occluded and lost joints freeze; then every position gets Gaussian jitter (rotations
    stay clean: the action's wrist rotation is the tracker's least noisy output)."""
    from scipy.ndimage import gaussian_filter1d

    n = len(camera)
    inv_camera = np.linalg.inv(camera)
    poses = {k: v.copy() for k, v in joints.items()}
    conf = {}
    for j in layout.JOINTS:
        smooth = gaussian_filter1d(rng.standard_normal(n), 5.0, mode="nearest")
        smooth /= max(float(smooth.std()), 1e-9)
        conf[j] = np.clip(BASE_CONFIDENCE[joint_kind(j)] + noise.confidence_jitter * smooth, 0.0, 1.0)
    for side in layout.SIDES:
        hand = (layout.wrist(side),) + layout.hand_joints(side)
        if not used[side]:
            for j in hand:
                conf[j][:] = 0.0
            continue
        for j in hand:
            conf[j][~in_view(joints[j][:, :3, 3], inv_camera, intrinsic)] = 0.0
        for finger in layout.FINGERS:
            distal = layout.finger_joints(side, finger)[-2:]
            count = rng.poisson(noise.occlusion_rate * n / layout.FPS)
            for span in _spans(rng, n, count, noise.occlusion_s):
                for j in distal:
                    conf[j][span[0]:span[1]] = 0.0
                    _freeze(poses[j], span)
        if rng.random() < noise.hand_loss:
            span = _spans(rng, n, 1, noise.hand_loss_s)[0]
            for j in hand:
                conf[j][span[0]:span[1]] = 0.0
                _freeze(poses[j], span)
    sigma = dict(wrist=noise.wrist_sigma, finger=noise.finger_sigma, tip=noise.tip_sigma, body=noise.body_sigma)
    for j in layout.JOINTS:
        poses[j][:, :3, 3] += rng.normal(0.0, sigma[joint_kind(j)], (n, 3))
    return poses, conf
