"""DexRegrasp-v0: in-hand regrasp, Anygrasp-to-Anygrasp (DexterityGen), on ManiSkill's 16-joint Allegro hand.

The object starts held in a grasp of its grasp set (`python -m generators.grasps`, shipped in assets/data/grasps); the
goal is the object pose of a nearby grasp of the same set (a kNN neighbour whose pose distance lies in `goal_range`:
far goals make learning plateau). Reaching it, within 1 cm and 0.1 rad (the in-hand convention of IsaacGymEnvs and
Isaac Lab), counts one consecutive success and draws the next goal near the one reached; the episode succeeds after
`goals_per_episode` of them and fails when the object drops out of the hand.

The hand's base is fixed in the air and its orientation is part of the scenario, so gravity acts from every side as
DexGen randomises it. A scenario's pose id reads as (tilt, start, pitch): the palm turned `tilt` from facing up (0)
through sideways to facing down (pi) about the fingers' axis, `pitch` the fingers raised or lowered, and `start` which
grasp of the set the episode starts in (a fraction of the set). Everything the policy sees is in the hand's base frame:
keypoints (fingertips and middle joints), object and goal poses, the goal relative to the object, gravity.

Actions: the 16 joint targets, by default as deltas on the previous targets (`pd_joint_target_delta_pos`: a zero action
keeps the squeeze that holds the object); `pd_joint_pos` takes absolute targets (the planner expert and the transition
data use those).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sapien
import torch
from mani_skill.sensors.camera import CameraConfig
from mani_skill.utils import sapien_utils
from mani_skill.utils.geometry.rotation_conversions import (matrix_to_quaternion, quaternion_invert,
                                                             quaternion_multiply)
from mani_skill.utils.structs.pose import Pose

import assets
from dexenvs.base import DexEnv
from dexenvs.grasps import POS_TOL, ROT_TOL, GraspSet
from dexenvs.registration import register
from dexenvs.robots import ROBOTS, quat_to_matrix
from dexenvs.scenarios import Workspace

GRASP_DIR = Path(assets.__file__).parent / "data" / "grasps"
DROP_MARGIN = 0.03  # m beyond the farthest grasp of the set: the object has left the hand


def grasp_set_path(robot: str, object_id: str, grasp_dir: Path | None = None) -> Path:
    return Path(grasp_dir or GRASP_DIR) / f"{robot}-{object_id}.npz"


def hand_rotation_of_pose(tilt: float, pitch: float) -> np.ndarray:
    """World rotation of the hand base for a scenario pose: palm up with fingers along world x, turned `tilt` about the
    fingers' axis, then `pitch` about world y. (Allegro base frame: fingers +z, palm normal +x, thumb +y.)"""
    from scipy.spatial.transform import Rotation

    palm_up = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])  # columns: hand x, y, z in the world
    return (Rotation.from_euler("y", -pitch) * Rotation.from_euler("x", tilt)).as_matrix() @ palm_up


def quat_angle(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    return 2 * torch.acos((q1 * q2).sum(-1).abs().clamp(max=1.0))


class _SetTensors:
    """One object's grasp set as tensors, with what goal drawing needs."""

    def __init__(self, gs: GraspSet, device):
        self.set = gs
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        self.q, self.target = t(gs.q), t(gs.target)
        self.pos, self.quat = t(gs.obj_pos), t(gs.obj_quat)
        self.center = self.pos.mean(0)
        self.radius = float((self.pos - self.center).norm(dim=-1).max())

    def __len__(self) -> int:
        return len(self.set)

    def draw_goal(self, i: int, low: float, high: float, rng: np.random.Generator) -> int:
        """A neighbour of grasp i at pose distance [low, high]; failing that the nearest at least `low` away, else the
        nearest."""
        near = self.set.goals(i, low, high)
        if len(near):
            return int(near[rng.integers(len(near))])
        far = self.set.knn[i][self.set.knn_dist[i] >= low]
        return int(far[0] if len(far) else self.set.knn[i][0])


@register("DexRegrasp-v0", max_episode_steps=200)
class DexRegraspEnv(DexEnv):
    task_name = "regrasp"
    # balls are in-hand sized too, but the grasp generator's first stage finds no seed grasp on them (docs/results.md)
    object_categories = ("cube", "cylinder")
    default_robots = ("allegro_hand_right",)
    # read as (tilt, start, pitch), see the module docstring
    workspace = Workspace(x=(0.0, np.pi), y=(0.0, 1.0), yaw=(-np.pi / 3, np.pi / 3))
    render_eye = (0.32, -0.30, 0.58)
    render_target = (0.06, 0.0, 0.34)

    def __init__(self, *args, goals_per_episode: int = 3, goal_range: tuple[float, float] = (1.0, 4.0),
                 grasp_dir: str | Path | None = None, **kwargs):
        if int(goals_per_episode) < 1:
            raise ValueError(f"goals_per_episode must be >= 1, got {goals_per_episode}")
        low, high = (float(x) for x in goal_range)
        if not 0 <= low < high:
            raise ValueError(f"goal_range must be (low, high) with 0 <= low < high (pose-distance units: 1 = 1 cm or "
                             f"0.1 rad), got {goal_range}")
        self.goals_per_episode, self.goal_range = int(goals_per_episode), (low, high)
        self.grasp_dir = Path(grasp_dir) if grasp_dir is not None else GRASP_DIR
        self.task_kwargs = dict(goals_per_episode=self.goals_per_episode, goal_range=list(self.goal_range))
        self.max_dense_reward = float(self.goals_per_episode + 1)
        self._sets: dict[str, _SetTensors] = {}
        kwargs.setdefault("control_mode", "pd_joint_target_delta_pos")
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ config
    @property
    def _default_sensor_configs(self):
        pose = sapien_utils.look_at([0.30, -0.26, 0.52], [0.06, 0.0, 0.33])
        return [CameraConfig("head", pose, self.camera_size, self.camera_size, 1.0, 0.01, 4)]

    # ------------------------------------------------------------------ scene
    def _load_scene(self, options: dict):
        super()._load_scene(options)
        hand = ROBOTS[self.robot_names[0]]
        for s in self.scenarios:
            self.grasp_set(s.object_id)
        self._mount = torch.tensor(hand.mount, dtype=torch.float32, device=self.device)
        names = [j.name for j in self.agent.robot.get_active_joints()]
        self._qpos_order = torch.tensor([hand.action_joints.index(n) for n in names], device=self.device)
        self._keypoint_links = [self.agent.robot.links_map[n] for n in hand.keypoint_links]

    def grasp_set(self, object_id: str) -> _SetTensors:
        if object_id not in self._sets:
            path = grasp_set_path(self.robot_names[0], object_id, self.grasp_dir)
            if not path.exists():
                have = sorted(p.stem.split("-", 1)[1] for p in self.grasp_dir.glob(f"{self.robot_names[0]}-*.npz")
                              if not p.name.endswith(".edges.npz"))
                raise FileNotFoundError(f"no grasp set for {object_id!r} on {self.robot_names[0]} ({path}); objects "
                                        f"with one: {have}; build it with `python -m generators.grasps --object "
                                        f"{object_id} --out {self.grasp_dir}`")
            gs = GraspSet.load(path)
            if "knn" not in gs.arrays:
                gs = gs.with_knn()
            self._sets[object_id] = _SetTensors(gs, self.device)
        return self._sets[object_id]

    # ------------------------------------------------------------------ episodes
    def _initialize_episode(self, env_idx: torch.Tensor, options: dict):
        n = self.num_envs
        if not hasattr(self, "_grasp_idx"):
            self._grasp_idx = np.zeros(n, dtype=np.int64)
            self._goal_idx = np.zeros(n, dtype=np.int64)
            self._goal_rng = [np.random.default_rng(0) for _ in range(n)]
            z3, z4 = torch.zeros((n, 3), device=self.device), torch.zeros((n, 4), device=self.device)
            self._hand_pos, self._hand_rot = z3.clone(), torch.eye(3, device=self.device).repeat(n, 1, 1)
            self._goal_pos, self._goal_quat = z3.clone(), z4.clone()
            self._set_center, self._set_radius = z3.clone(), torch.zeros(n, device=self.device)
            self.consecutive_successes = torch.zeros(n, dtype=torch.int32, device=self.device)
            self._reached_now = torch.zeros(n, dtype=torch.bool, device=self.device)
        start = options.get("start_grasp")
        goal = options.get("goal_grasp")
        idx = env_idx.tolist()
        q, target, obj_p, obj_q = [], [], [], []
        for k, i in enumerate(idx):
            s = self.scenarios[i]
            gs = self.grasp_set(s.object_id)
            tilt, frac, pitch = self.space.pose(s.pose_id)
            rot = torch.as_tensor(hand_rotation_of_pose(tilt, pitch), dtype=torch.float32, device=self.device)
            self._hand_rot[i], self._hand_pos[i] = rot, self._mount
            g = int(_pick(start, k)) if start is not None else min(int(frac * len(gs)), len(gs) - 1)
            if not 0 <= g < len(gs):
                raise ValueError(f"start_grasp {g} is not in {s.object_id}'s grasp set (0..{len(gs) - 1})")
            self._grasp_idx[i] = g
            seeds = np.atleast_1d(self._episode_seed)
            self._goal_rng[i] = np.random.default_rng([int(seeds[i % len(seeds)]), 7])
            self._set_center[i], self._set_radius[i] = gs.center, gs.radius
            q.append(gs.q[g]), target.append(gs.target[g]), obj_p.append(gs.pos[g]), obj_q.append(gs.quat[g])
            self._set_goal(i, int(_pick(goal, k)) if goal is not None else
                           gs.draw_goal(g, *self.goal_range, self._goal_rng[i]))
        q, target, obj_p, obj_q = (torch.stack(x) for x in (q, target, obj_p, obj_q))
        hand_rot, hand_pos = self._hand_rot[env_idx], self._hand_pos[env_idx]
        self._hand_quat = matrix_to_quaternion(self._hand_rot)  # fixed for the episode: the snapshot reads it
        self.agent.robot.set_pose(Pose.create_from_pq(hand_pos, matrix_to_quaternion(hand_rot)))
        self.agent.robot.set_qpos(q[:, self._qpos_order])
        self.agent.robot.set_qvel(torch.zeros_like(q))
        self._pending_targets = (env_idx, target)
        world_p = hand_pos + (hand_rot @ obj_p.unsqueeze(-1)).squeeze(-1)
        world_q = quaternion_multiply(matrix_to_quaternion(hand_rot), obj_q)
        self.obj.set_pose(Pose.create_from_pq(world_p, world_q))
        self.obj.set_linear_velocity(torch.zeros((len(idx), 3), device=self.device))
        self.obj.set_angular_velocity(torch.zeros((len(idx), 3), device=self.device))
        self.consecutive_successes[env_idx] = 0
        self._reached_now[env_idx] = False
        self._snap = None

    def reset(self, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        # ManiSkill resets the controllers after _initialize_episode, to the joint positions: drive the validated
        # squeeze targets instead, or the grasp starts without the force that holds it
        env_idx, target = self._pending_targets
        ctrl = self.agent.controller
        ctrl._target_qpos[env_idx] = target
        ctrl.set_drive_targets(ctrl._target_qpos)
        self._snap = None
        obs = self.get_obs(info)
        self._last_obs = obs
        return obs, info

    def _set_goal(self, i: int, g: int) -> None:
        gs = self.grasp_set(self.scenarios[i].object_id)
        if not 0 <= g < len(gs):
            raise ValueError(f"goal_grasp {g} is not in {self.scenarios[i].object_id}'s grasp set (0..{len(gs) - 1})")
        self._goal_idx[i] = g
        self._goal_pos[i], self._goal_quat[i] = gs.pos[g], gs.quat[g]

    @property
    def goal_grasp(self) -> np.ndarray:
        """(b,) index of each sub-env's goal in its object's grasp set."""
        return self._goal_idx.copy()

    @property
    def start_grasp(self) -> np.ndarray:
        return self._grasp_idx.copy()

    # ------------------------------------------------------------------ state
    def snapshot(self) -> dict:
        if self._snap is None:
            R, p = self._hand_rot, self._hand_pos
            if self.gpu_sim_enabled:
                kp = torch.stack([link.pose.p for link in self._keypoint_links], 1)
            else:  # the same float32 positions, without a Pose wrapper per link
                kp = torch.from_numpy(np.stack([link._objs[0].entity_pose.p for link in self._keypoint_links]))[None]
            pose = self.obj.pose
            obj_rot = quat_to_matrix(pose.q)
            s = dict(obj_pos=pose.p, obj_quat=pose.q, obj_rot=obj_rot, obj_linvel=self.obj.linear_velocity,
                     obj_angvel=self.obj.angular_velocity)
            s["keypoints"] = (kp - p[:, None]) @ R
            s["obj_pos_hand"] = ((pose.p - p).unsqueeze(1) @ R).squeeze(1)
            s["obj_quat_hand"] = matrix_to_quaternion(R.transpose(1, 2) @ obj_rot)
            s["obj_vel_hand"] = torch.cat([(s["obj_linvel"].unsqueeze(1) @ R).squeeze(1),
                                           (s["obj_angvel"].unsqueeze(1) @ R).squeeze(1)], -1)
            s["pos_err"] = (s["obj_pos_hand"] - self._goal_pos).norm(dim=-1)
            s["rot_err"] = quat_angle(s["obj_quat_hand"], self._goal_quat)
            s["dropped"] = (s["obj_pos_hand"] - self._set_center).norm(dim=-1) > self._set_radius + DROP_MARGIN
            s["wrist_pos0"], s["wrist_quat0"] = p, self._hand_quat  # the fixed hand base, as the recorder reads it
            self._snap = s
        return self._snap

    def obj_center(self) -> torch.Tensor:
        s = self.snapshot()
        return s["obj_pos"] + (s["obj_rot"] @ self._obj_center_local.unsqueeze(-1)).squeeze(-1)

    def reference_poses(self) -> dict[str, torch.Tensor]:
        """The object's pose and the goal's, in the hand frame (b, 7 each), recorded per step with datasets."""
        s = self.snapshot()
        return dict(obj_pose=torch.cat([s["obj_pos_hand"], s["obj_quat_hand"]], -1),
                    goal_pose=torch.cat([self._goal_pos, self._goal_quat], -1))

    def goal_distance(self) -> torch.Tensor:
        """(b,) pose distance to the goal in tolerance units (`dexenvs.grasps.pose_distance`)."""
        s = self.snapshot()
        return torch.sqrt((s["pos_err"] / POS_TOL) ** 2 + (s["rot_err"] / ROT_TOL) ** 2)

    def _after_control_step(self):
        self._snap = None
        s = self.snapshot()
        done = self.consecutive_successes >= self.goals_per_episode
        hit = (s["pos_err"] < POS_TOL) & (s["rot_err"] < ROT_TOL) & ~done & ~s["dropped"]
        self._reached_now = hit
        if hit.any():
            self.consecutive_successes = self.consecutive_successes + hit.int()
            for i in hit.nonzero()[:, 0].tolist():
                if int(self.consecutive_successes[i]) < self.goals_per_episode:
                    gs = self.grasp_set(self.scenarios[i].object_id)
                    self._set_goal(i, gs.draw_goal(int(self._goal_idx[i]), *self.goal_range, self._goal_rng[i]))
            self._snap = None

    def _holding(self) -> torch.Tensor:
        return ~self.snapshot()["dropped"]

    def evaluate(self):
        s = self.snapshot()
        return dict(success=self.consecutive_successes >= self.goals_per_episode, fail=s["dropped"],
                    consecutive_successes=self.consecutive_successes.clone(), goal_reached=self._reached_now.clone(),
                    pos_err=s["pos_err"], rot_err=s["rot_err"])

    # ------------------------------------------------------------------ observations and rewards
    def _get_obs_extra(self, info: dict):
        s = self.snapshot()
        goal_rel_q = quaternion_multiply(self._goal_quat, quaternion_invert(s["obj_quat_hand"]))
        gravity = (torch.tensor([0.0, 0.0, -1.0], device=self.device).expand(self.num_envs, 3).unsqueeze(1)
                   @ self._hand_rot).squeeze(1)
        return dict(keypoints=s["keypoints"].reshape(self.num_envs, -1),
                    obj_pose=torch.cat([s["obj_pos_hand"], s["obj_quat_hand"]], -1),
                    obj_vel=s["obj_vel_hand"],
                    obj_extents=2 * self._obj_half_extents,
                    goal_pose=torch.cat([self._goal_pos, self._goal_quat], -1),
                    goal_rel=torch.cat([self._goal_pos - s["obj_pos_hand"], goal_rel_q], -1),
                    gravity=gravity,
                    target_qpos=self.agent.controller._target_qpos.clone())

    def compute_dense_reward(self, obs, action, info):
        # one point per goal reached, and up to one more for closing in on the current goal; a drop earns nothing
        reward = self.consecutive_successes.float() + 1 - torch.tanh(self.goal_distance() / 5.0)
        reward = torch.where(info["success"], torch.full_like(reward, self.max_dense_reward), reward)
        return torch.where(info["fail"], torch.zeros_like(reward), reward)


def _pick(value, k: int):
    return value[k] if isinstance(value, (list, tuple, np.ndarray, torch.Tensor)) else value
