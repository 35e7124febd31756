"""Embodiments. The floating Inspire hands are ManiSkill's, extended with an absolute wrist-pose control mode.

`pd_wrist_pose`: action = [wrist position (3), wrist rotation 6D (6), finger joint targets (6)] in the world frame, where
the wrist is the hand's base link and 6D rotation is the first two columns of the rotation matrix (EgoDex convention).
Generators transform these poses in SE(3) and replay the finger targets verbatim. The controller turns the pose into
targets for the six floating root joints (x, y, z prismatic, then revolute x, y, z), choosing the Euler solution closest
to the current joint values so targets never jump by 2*pi.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from mani_skill.agents.controllers import PDJointPosController, PDJointPosControllerConfig
from mani_skill.agents.registration import register_agent
from mani_skill.agents.robots.allegro_hand import AllegroHandRight
from mani_skill.agents.robots.inspire_hand import FloatingInspireHandLeft, FloatingInspireHandRight
from mani_skill.agents.robots.xarm.xarm7_ability import XArm7Ability

# Wrist (hand base link) relative to the end of the floating chain, with the wrist pitch/yaw joints at zero (measured).
# In both hands' base frames the fingers point along +y and the thumb sits on +x; the right palm faces +z, the left -z.
_BASE_OFFSET_P = torch.tensor([0.0, 0.0, 0.0785])
_BASE_OFFSET_Q = dict(right=torch.tensor([0.0, 0.0, 0.70710678, 0.70710678]),  # wxyz
                      left=torch.tensor([0.70710678, 0.70710678, 0.0, 0.0]))
PALM_SIGN = dict(right=1.0, left=-1.0)
# The chain's Euler singularity is where the fingers point along the root's x axis. Mounting the root rotated -90 deg
# about y puts root x on world z, so the singular poses are "fingers straight up/down", which no task uses, instead of
# "fingers along world x", which every palm-down grasp uses.
ROOT_MOUNT_Q = (0.70710678, 0.0, -0.70710678, 0.0)  # wxyz
ROOT_STIFFNESS, ROOT_DAMPING, ROOT_FORCE_LIMIT = 5e3, 3e2, 500.0
FINGER_FORCE_LIMIT = 0.5
ARMATURE = dict(root=0.1, wrist=0.01, finger=0.001)
MAX_STEP = (1.0, 1.0, 1.0, 6.0, 6.0, 6.0)  # root joint speed limits in pd_wrist_pose: m/s for x, y, z and rad/s
WORKSPACE_LOW = np.array([-0.6, -0.6, -0.05], dtype=np.float32)
WORKSPACE_HIGH = np.array([0.6, 0.6, 0.8], dtype=np.float32)


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) wxyz -> (..., 3, 3)."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(q.shape[:-1] + (3, 3))


def rot6d_to_matrix(r6: torch.Tensor) -> torch.Tensor:
    """(..., 6) = first two columns [c0, c1] -> (..., 3, 3) by Gram-Schmidt."""
    a, b = r6[..., :3], r6[..., 3:6]
    c0 = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b = b - (c0 * b).sum(-1, keepdim=True) * c0
    c1 = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    c2 = torch.cross(c0, c1, dim=-1)
    return torch.stack([c0, c1, c2], dim=-1)


def matrix_to_rot6d(m: torch.Tensor) -> torch.Tensor:
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)


_CONST: dict = {}


def _constants(like: torch.Tensor, side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R_mount^T, R_off^T, p_off) of one hand on the tensor's device and dtype, built once."""
    key = (like.device, like.dtype, side)
    if key not in _CONST:
        r_mount = quat_to_matrix(torch.tensor(ROOT_MOUNT_Q, dtype=like.dtype, device=like.device))
        r_off = quat_to_matrix(_BASE_OFFSET_Q[side].to(like))
        _CONST[key] = (r_mount.T.contiguous(), r_off.T.contiguous(), _BASE_OFFSET_P.to(like))
    return _CONST[key]


def pose_to_root_joints(pos: torch.Tensor, rot: torch.Tensor, current: torch.Tensor, side: str = "right") -> torch.Tensor:
    """World wrist pose (pos (N,3), rot (N,3,3)) -> root joint values (N,6) near `current` (N,6).

    The chain's rotation is intrinsic XYZ: R_chain = Rx(a) Ry(b) Rz(c); in the root frame R_wrist = R_chain R_off and
    p = t + R_chain p_off; the root frame is the world rotated by ROOT_MOUNT_Q (origin shared).
    """
    mount_t, off_t, p_off = _constants(rot, side)
    rc = mount_t @ rot @ off_t
    t = pos @ mount_t.T - rc @ p_off
    b = torch.asin(rc[:, 0, 2].clamp(-1.0, 1.0))
    a = torch.atan2(-rc[:, 1, 2], rc[:, 2, 2])
    c = torch.atan2(-rc[:, 0, 1], rc[:, 0, 0])
    cur = current[:, 3:6]
    # the two Euler solutions, each wrapped to the nearest 2*pi copy of the current joint values; keep the nearer one
    two_pi = 2 * torch.pi
    sol0 = torch.stack([a, b, c], -1)
    sol1 = torch.stack([a + torch.pi, torch.pi - b, c + torch.pi], -1)
    sol0 = sol0 + two_pi * torch.round((cur - sol0) / two_pi)
    sol1 = sol1 + two_pi * torch.round((cur - sol1) / two_pi)
    use1 = (sol1 - cur).abs().sum(-1, keepdim=True) < (sol0 - cur).abs().sum(-1, keepdim=True)
    return torch.cat([t, torch.where(use1, sol1, sol0)], dim=-1)


def root_joints_to_pose(q: torch.Tensor, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of `pose_to_root_joints`: (N,6) -> (pos (N,3), rot (N,3,3))."""
    a, b, c = q[:, 3], q[:, 4], q[:, 5]
    one, zero = torch.ones_like(a), torch.zeros_like(a)

    def rx(t):
        return torch.stack([one, zero, zero, zero, t.cos(), -t.sin(), zero, t.sin(), t.cos()], -1).reshape(-1, 3, 3)

    def ry(t):
        return torch.stack([t.cos(), zero, t.sin(), zero, one, zero, -t.sin(), zero, t.cos()], -1).reshape(-1, 3, 3)

    def rz(t):
        return torch.stack([t.cos(), -t.sin(), zero, t.sin(), t.cos(), zero, zero, zero, one], -1).reshape(-1, 3, 3)

    rc = rx(a) @ ry(b) @ rz(c)
    mount_t, off_t, p_off = _constants(q, side)
    rot = mount_t.T @ rc @ off_t.T
    pos = (q[:, :3] + rc @ p_off) @ mount_t
    return pos, rot


def direct_drive_targets(controller) -> None:
    """On the CPU sim, a joint controller's targets go straight to the PhysX joints (the same float32 values):
    ManiSkill's path converts and checks every joint's target as a batched tensor, several times the cost of setting
    it, on every control step (benchmarks.step_profile). A combined controller's parts each get it; the GPU path is
    left as it is."""
    parts = getattr(controller, "controllers", None)
    if parts is not None:
        for c in parts.values():
            direct_drive_targets(c)
        return
    if not hasattr(controller, "set_drive_targets") or controller.scene.gpu_sim_enabled or not controller.joints:
        return
    joints = [j._objs[0] for j in controller.joints]

    def set_drive_targets(targets: torch.Tensor) -> None:
        for joint, value in zip(joints, targets[0].tolist()):
            joint.set_drive_target(value)

    controller.set_drive_targets = set_drive_targets


class WristPoseController(PDJointPosController):
    """Absolute wrist pose (position + 6D rotation) -> PD targets of the floating root joints; the two wrist joints of
    the Inspire hand (listed after the root joints) are held at zero so the pose fully determines the hand frame."""

    config: "WristPoseControllerConfig"

    def _initialize_action_space(self):
        low = np.concatenate([WORKSPACE_LOW, -np.ones(6, dtype=np.float32)])
        high = np.concatenate([WORKSPACE_HIGH, np.ones(6, dtype=np.float32)])
        self.single_action_space = spaces.Box(low, high, dtype=np.float32)
        self._max_step = torch.tensor(MAX_STEP, device=self.device) / self._control_freq

    def set_action(self, action: torch.Tensor):
        action = self._preprocess_action(action)
        qpos = self.qpos
        rot = rot6d_to_matrix(action[:, 3:9])
        root = pose_to_root_joints(action[:, :3], rot, qpos[:, :6], self.config.side)
        # rate limit, as a real arm's controller would: a pose far from the hand is approached over several steps
        # instead of being reached in one 50 ms step (which slams the hand into the table and destabilizes PhysX)
        root = qpos[:, :6] + (root - qpos[:, :6]).clamp(-self._max_step, self._max_step)
        self._step = 0
        self._start_qpos = qpos
        self._target_qpos = torch.cat([root, torch.zeros_like(qpos[:, 6:])], dim=-1)
        self.set_drive_targets(self._target_qpos)


@dataclass
class WristPoseControllerConfig(PDJointPosControllerConfig):
    normalize_action: bool = False
    side: str = "right"
    controller_cls = WristPoseController


def _with_wrist_pose(cls):
    """Subclass of a ManiSkill floating Inspire hand that adds the `pd_wrist_pose` control mode."""
    side = "right" if "Right" in cls.__name__ else "left"

    class Hand(cls):
        uid = f"inspire_hand_{side}"
        floating = True
        hand_side = side
        palm_sign = PALM_SIGN[side]
        fingertip_links = tuple(f"{side}_hand_{f}_tip" for f in ("thumb", "index", "middle", "ring", "pinky"))
        wrist_link = f"{side}_hand_hand_base_link"

        def _after_loading_articulation(self):
            super()._after_loading_articulation()
            # The floating chain's dummy links and the small wrist links have almost no inertia; under contact PhysX
            # then violates the wrist joint limits and the articulation blows up under random actions. Joint armature
            # (reflected rotor inertia, as real actuators have) fixes it in both control modes (docs/notebook.md).
            for j in self.robot.get_active_joints():
                a = ARMATURE["root"] if j.name.startswith("root") else ARMATURE["wrist"] if "wrist" in j.name else ARMATURE["finger"]
                for o in j._objs:
                    o.set_armature([a])

        @property
        def _controller_configs(self):
            cfgs = super()._controller_configs
            # Stiffer than ManiSkill's root drives (1e3 / 1e2, a 0.1 s lag) so absolute poses are tracked closely while
            # fingers push on objects; stiffer still let random actions destabilize PhysX.
            wrist_pose = WristPoseControllerConfig(
                joint_names=list(self.root_joint_names) + list(cfgs["pd_joint_pos"]["wrist"].joint_names),
                lower=None, upper=None, stiffness=ROOT_STIFFNESS, damping=ROOT_DAMPING, force_limit=ROOT_FORCE_LIMIT,
                side=side,
            )
            # ManiSkill's finger drives allow 20 N m: ~1000 N at a fingertip, which makes PhysX eject squeezed objects.
            # A real Inspire finger pushes ~10 N; FINGER_FORCE_LIMIT (N m) gives that order at a 5 cm lever.
            for mode in cfgs.values():
                mode["fingers"].force_limit = FINGER_FORCE_LIMIT
                mode["passive"].force_limit = FINGER_FORCE_LIMIT
            cfgs["pd_wrist_pose"] = dict(
                root=wrist_pose, fingers=deepcopy(cfgs["pd_joint_pos"]["fingers"]), passive=cfgs["pd_joint_pos"]["passive"]
            )
            return cfgs

    Hand.__name__ = Hand.__qualname__ = f"InspireHand{side.title()}"
    return register_agent()(Hand)


InspireHandRight = _with_wrist_pose(FloatingInspireHandRight)
InspireHandLeft = _with_wrist_pose(FloatingInspireHandLeft)


@register_agent()
class XArm7AbilityHand(XArm7Ability):
    """ManiSkill's xArm7 + Ability hand with the link names tasks read (wrist = the hand base, five fingertips)."""

    uid = "xarm7_ability_dex"
    floating = False
    hand_side = "right"
    palm_sign = 1.0
    fingertip_links = ("thumb_tip", "index_tip", "middle_tip", "ring_tip", "pinky_tip")
    wrist_link = "base"
    mount = (-0.72, 0.0, 0.0)  # arm base just off the table edge (x = -0.6), facing +x

    def rest_qpos(self) -> torch.Tensor:
        """ManiSkill's rest keyframe with each mimic q2 = 1.0585 q1 + 0.7235 as the URDF's tendons require; the
        keyframe's zeros violate that and the tendons fling the arm on the first step."""
        q = torch.as_tensor(self.keyframes["rest"].qpos, dtype=torch.float32).clone()
        names = [j.name for j in self.robot.get_active_joints()]
        for f in ("index", "middle", "ring", "pinky"):
            q[names.index(f"{f}_q2")] = 1.05851325 * q[names.index(f"{f}_q1")] + 0.72349796
        return q

    @property
    def _controller_configs(self):
        # ManiSkill drives the four q2 finger joints too, but the URDF makes them mimic q1 (tendons): the drives fight
        # the tendons and the sim blows up within a few steps even at zero action. Drive the q1 joints and the thumb's
        # q2 only; the mimic joints follow passively.
        from mani_skill.agents.controllers import PassiveControllerConfig

        cfgs = super()._controller_configs
        mimic = [f"{f}_q2" for f in ("index", "middle", "ring", "pinky")]
        for mode in cfgs.values():
            hand = mode.pop("gripper")
            hand.joint_names = [j for j in hand.joint_names if j not in mimic]
            hand.force_limit = FINGER_FORCE_LIMIT * 2
            mode["hand"] = hand
            mode["passive"] = PassiveControllerConfig(joint_names=mimic, damping=0.001, force_limit=FINGER_FORCE_LIMIT)
        return cfgs


@dataclass(frozen=True)
class Finger:
    name: str
    joints: tuple[int, ...]  # indices in the hand's action order
    tip_link: str
    middle_link: str  # a link halfway along the finger: the keypoints are the tips and these
    relaxed: tuple[float, ...]  # a half-closed pose the grasp IK starts from
    opposes: bool = False  # the thumb: every grasp uses it against the other fingers


@register_agent()
class AllegroHand(AllegroHandRight):
    """ManiSkill's right Allegro hand (16 joints, fixed base) with what in-hand tasks and the grasp generator read.

    Its base frame: fingers along +z, palm normal +x, thumb on +y. Joint vectors, actions and stored grasps use the
    action order joint_0.0 ... joint_15.0 (index, middle, ring, thumb); SAPIEN's qpos order differs
    (map by joint name)."""

    uid = "allegro_hand_right_dex"
    floating = False
    hand_side = "right"
    palm_sign = 1.0
    mount = (0.0, 0.0, 0.3)
    fingers = (Finger("thumb", (12, 13, 14, 15), "link_15.0_tip", "link_14.0", (1.1, 0.4, 0.4, 0.4), opposes=True),
               Finger("index", (0, 1, 2, 3), "link_3.0_tip", "link_2.0", (0.0, 0.5, 0.5, 0.3)),
               Finger("middle", (4, 5, 6, 7), "link_7.0_tip", "link_6.0", (0.0, 0.5, 0.5, 0.3)),
               Finger("ring", (8, 9, 10, 11), "link_11.0_tip", "link_10.0", (0.0, 0.5, 0.5, 0.3)))
    fingertip_links = tuple(f.tip_link for f in fingers)
    keypoint_links = tuple(f.tip_link for f in fingers) + tuple(f.middle_link for f in fingers)
    action_joints = tuple(f"joint_{i}.0" for i in range(16))  # ManiSkill's controller order
    tip_radius = 0.012  # the fingertip collision hull is a 12 mm sphere about the tip frame
    wrist_link = "base_link"

    @classmethod
    def urdf_path_resolved(cls) -> str:
        """The URDF with plain meshes (the agent loads the glb variant: same links, joints and collisions)."""
        return cls.urdf_path.replace("_glb.urdf", ".urdf")


# Names users may pass as robot_uids -> the agent class that is built.
ROBOTS = {
    "floating_inspire_hand_right": InspireHandRight,
    "floating_inspire_hand_left": InspireHandLeft,
    "inspire_hand_right": InspireHandRight,
    "inspire_hand_left": InspireHandLeft,
    "xarm7_ability": XArm7AbilityHand,
    "allegro_hand_right": AllegroHand,
}
