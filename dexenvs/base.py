"""`DexEnv`: the base every dexsuite task subclasses (ManiSkill `BaseEnv` conventions, batched torch throughout).

What the base owns, so tasks do not repeat it:
- embodiments by `robot_uids` (floating Inspire hands with the `pd_wrist_pose` mode, or ManiSkill's `xarm7_ability`);
- the scenario model: `reset(options={"scenario": ...})` or a sample from `split`; `info["scenario"]` reports it;
- the scene: table top at z = 0 with the environment's material, a backdrop, lighting, the scenario's object;
- observations: agent qpos/qvel, wrist pose, fingertip positions, object pose and velocity, task goal; a 128x128 head
  camera for `rgb`/`rgbd`;
- guards: unknown kwargs and non-finite actions raise errors that say what is valid.

A task sets `task_name`, `object_categories`, `workspace`, `lift_height`, implements `_holding` (its success condition
at one step), `evaluate` (adding its own terms to `_base_eval()`), `compute_dense_reward`, and may override
`_initial_wrist_pose`.
"""

from __future__ import annotations

import gc
import inspect
import zlib
from typing import Any

import gymnasium as gym
import numpy as np
import sapien
from gymnasium.utils import seeding
import torch
from mani_skill.envs.sapien_env import BaseEnv
from mani_skill.sensors.camera import CameraConfig
from mani_skill.utils import sapien_utils
from mani_skill.utils.structs.actor import Actor
from mani_skill.utils.structs.pose import Pose
from mani_skill.utils.structs.types import SimConfig

from assets import environments as env_lib
from assets import objects as obj_lib
from dexenvs.robots import (ROOT_MOUNT_Q, ROBOTS, direct_drive_targets, matrix_to_rot6d, pose_to_root_joints,
                            quat_to_matrix)
from dexenvs.scenarios import SPLITS, Scenario, ScenarioSpace, Workspace

TABLE_SIZE = (1.2, 1.0, 0.05)  # x, y, thickness; the top is at z = 0
TABLE_HEIGHT = 0.75
HEAD_CAMERA_EYE = (-0.42, 0.0, 0.48)
HEAD_CAMERA_TARGET = (0.05, 0.0, 0.0)

_BASE_KWARGS = set(inspect.signature(BaseEnv.__init__).parameters) - {"self", "robot_uids"}


def _freeze_heap_once() -> None:
    """ManiSkill's reconfigure (every reset that changes the object builds a new scene) calls gc.collect() to free
    the old scene, and a full collection walks every object Python tracks: torch's, SAPIEN's, numpy's, most of a
    reset's time on a CPU (benchmarks.step_profile). Moving what lives before the first env is built into the permanent
    generation (`gc.freeze`) leaves those collections the scenes' objects only. Once per process: what is alive then
    (imported modules, mostly) is never collected as a cycle, which a process keeps anyway."""
    global _HEAP_FROZEN
    if not _HEAP_FROZEN:
        gc.collect()
        gc.freeze()
        _HEAP_FROZEN = True


_HEAP_FROZEN = False


def hand_rotation(fingers, palm, palm_sign: float = 1.0) -> np.ndarray:
    """Wrist rotation of a hand whose fingers point along `fingers` and whose palm faces `palm` (world vectors).
    Base frames: fingers +y, thumb side +x, palm toward palm_sign * z (+1 right hand, -1 left hand)."""
    y = np.asarray(fingers, dtype=np.float64)
    y = y / np.linalg.norm(y)
    z = palm_sign * np.asarray(palm, dtype=np.float64)
    z = z - np.dot(z, y) * y
    z /= np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z], axis=1)


def _object_color(object_id: str) -> list[float]:
    h = zlib.crc32(object_id.encode())
    hue = (h % 360) / 360.0
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(hue, 0.55, 0.85)
    return [r, g, b, 1.0]


class DexEnv(BaseEnv):
    SUPPORTED_REWARD_MODES = ("dense", "normalized_dense", "sparse", "none")
    SUPPORTED_OBS_MODES = ("state", "none", "state_dict", "rgb", "rgbd", "depth", "sensor_data", "rgb+depth")
    # subclasses set these
    task_name: str = ""
    env_id: str = ""  # set by dexenvs.registration.register
    object_categories: tuple[str, ...] = ()
    workspace: Workspace = Workspace((-0.1, 0.1), (-0.1, 0.1))
    sim_freq: int = 120
    control_freq: int = 20
    max_episode_steps: int = 100
    lift_height: float = 0.0  # the goal is the object's rest centre raised by this much
    hold_steps_required: int = 10  # success = the task's condition held this many consecutive control steps
    max_dense_reward: float = 1.0
    task_kwargs: dict = {}  # the task's own constructor options, recorded with datasets

    default_robots: tuple[str, ...] = ("floating_inspire_hand_right",)

    def __init__(self, *args, robot_uids: str | tuple[str, ...] | None = None, split: str = "train",
                 scenario: Any = None, camera_size: int = 128, **kwargs):
        if args:
            raise TypeError(f"{type(self).__name__} takes keyword arguments only")
        unknown = set(kwargs) - _BASE_KWARGS
        if unknown:
            raise TypeError(f"unknown argument(s) {sorted(unknown)} for {type(self).__name__}; valid: "
                            f"{sorted(_BASE_KWARGS | {'robot_uids', 'split', 'scenario', 'camera_size'})}")
        robots = tuple(self.default_robots if robot_uids is None else
                       (robot_uids,) if isinstance(robot_uids, str) else robot_uids)
        for r in robots:
            if r not in ROBOTS:
                raise ValueError(f"unknown robot_uids {r!r}; valid: {list(ROBOTS)}")
        if len(robots) != len(self.default_robots):
            raise ValueError(f"{type(self).__name__} needs {len(self.default_robots)} robot(s), got {robots}; "
                             f"default: {self.default_robots}")
        if len(robots) > 1:
            if any(not ROBOTS[r].floating for r in robots):
                # ManiSkill 3.0.1's only arm + dexterous hand is xArm7 + a right Ability hand: no left-handed arm to pair
                raise ValueError(f"{type(self).__name__} is a two-hand task: it takes the floating hands only "
                                 f"({list(self.default_robots)}); ManiSkill ships no left arm + hand to pair with "
                                 f"xarm7_ability")
            if sorted(ROBOTS[r].hand_side for r in robots) != ["left", "right"]:
                raise ValueError(f"{type(self).__name__} needs one left and one right hand, got {robots}")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
        self.robot_names = robots
        self.split = split
        self.camera_size = int(camera_size)
        self.space = self.scenario_space()
        self._fixed_scenario = None if scenario is None else self.space.validate(Scenario.parse(scenario))
        self.scenarios: list[Scenario] = []
        self._loaded_key: tuple | None = None
        self._snap: dict | None = None
        # without CUDA, ask SAPIEN for its CPU renderer directly (lavapipe or any Vulkan device) instead of warning
        kwargs.setdefault("render_backend", "gpu" if torch.cuda.is_available() else "cpu")
        if any(not ROBOTS[r].floating for r in robots):
            kwargs.setdefault("control_mode", "pd_joint_delta_pos")
        else:
            kwargs.setdefault("control_mode", "pd_wrist_pose")
        classes = tuple(ROBOTS[r] for r in robots)
        _freeze_heap_once()
        super().__init__(robot_uids=classes[0] if len(classes) == 1 else classes, **kwargs)
        self._flatten_action_space()

    def _flatten_action_space(self) -> None:
        """Several hands: ManiSkill's per-agent Dict action space becomes one Box (hands in order, each hand's action
        as in the one-hand tasks), which gymnasium wrappers and stable-baselines3 take as is; step() splits it."""
        space = self.single_action_space
        if not isinstance(space, gym.spaces.Dict):
            self._agent_slices = None
            return
        self._agent_slices, i = {}, 0
        for k, sub in space.spaces.items():
            self._agent_slices[k] = slice(i, i + sub.shape[0])
            i += sub.shape[0]
        low = np.concatenate([sub.low for sub in space.spaces.values()]).astype(np.float32)
        high = np.concatenate([sub.high for sub in space.spaces.values()]).astype(np.float32)
        self.single_action_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.action_space = (self.single_action_space if self.num_envs == 1 else
                             gym.vector.utils.batch_space(self.single_action_space, self.num_envs))

    # ------------------------------------------------------------------ config
    @property
    def _default_sim_config(self):
        return SimConfig(sim_freq=self.sim_freq, control_freq=self.control_freq)

    @property
    def _default_sensor_configs(self):
        pose = sapien_utils.look_at(HEAD_CAMERA_EYE, HEAD_CAMERA_TARGET)
        return [CameraConfig("head", pose, self.camera_size, self.camera_size, np.pi / 2.6, 0.01, 4)]

    render_eye: tuple[float, float, float] = (-0.30, -0.42, 0.40)  # the video camera; two-hand tasks stand it back
    render_target: tuple[float, float, float] = (0.05, 0.0, 0.10)

    @property
    def _default_human_render_camera_configs(self):
        pose = sapien_utils.look_at(list(self.render_eye), list(self.render_target))
        return CameraConfig("render_camera", pose, 512, 512, 0.9, 0.01, 5)

    # ------------------------------------------------------------------ scenarios
    def reset(self, seed=None, options=None):
        options = dict(options or {})
        if seed is not None:  # gymnasium's episode RNG; scenarios are drawn from it
            self._np_random, self._np_random_seed = seeding.np_random(int(seed if np.isscalar(seed) else seed[0]))
        split = options.pop("split", self.split)
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
        given = options.pop("scenario", None) or self._fixed_scenario
        partial = "env_idx" in options and len(options["env_idx"]) != self.num_envs
        if not partial:
            if given is not None:
                given = given if isinstance(given, (list,)) and not isinstance(given[0], (str, int)) else [given] * self.num_envs
                if len(given) != self.num_envs:
                    raise ValueError(f"got {len(given)} scenarios for {self.num_envs} parallel envs")
                new = [self.space.validate(Scenario.parse(s)) for s in given]
            else:
                new = [self.space.sample(split, self.np_random) for _ in range(self.num_envs)]
            key = tuple((s.object_id, s.env_id) for s in new)
            if key != self._loaded_key:
                options["reconfigure"] = True
            self.scenarios = new
        return super().reset(seed=seed, options=options)

    @classmethod
    def scenario_space(cls) -> ScenarioSpace:
        """The task's scenario space; a pure function of the class, so it needs no env (and no scene) to build."""
        return ScenarioSpace(cls.task_name, cls.object_categories, cls.workspace)

    def _scenario_info(self) -> dict:
        return dict(scenario=[str(s) for s in self.scenarios] if self.num_envs > 1 else str(self.scenarios[0]))

    # ------------------------------------------------------------------ scene
    def _load_agent(self, options: dict):
        mounts = [sapien.Pose(q=list(ROOT_MOUNT_Q)) if ROBOTS[r].floating else sapien.Pose(list(ROBOTS[r].mount))
                  for r in self.robot_names]
        super()._load_agent(options, mounts if len(mounts) > 1 else mounts[0])
        self._hands = self.agent.agents if hasattr(self.agent, "agents") else [self.agent]
        for hand in self._hands:
            direct_drive_targets(hand.controller)
            if hand.floating:  # the floating base is virtual: hand links carry no weight, as a real arm would hold it
                for link in hand.robot.links:
                    for o in link._objs:
                        o.disable_gravity = True

    def _load_scene(self, options: dict):
        self._assets = [obj_lib.get_object(s.object_id) for s in self.scenarios]
        envs = [env_lib.get_environment(s.env_id) for s in self.scenarios]
        tables, objs = [], []
        for i, (asset, e) in enumerate(zip(self._assets, envs)):
            tb = self.scene.create_actor_builder()
            tmat = sapien.render.RenderMaterial(base_color=list(e.table.color), roughness=e.table.roughness,
                                                metallic=e.table.metallic)
            half = [TABLE_SIZE[0] / 2, TABLE_SIZE[1] / 2, TABLE_SIZE[2] / 2]
            tb.add_box_collision(sapien.Pose([0, 0, -half[2]]), half)
            tb.add_box_visual(sapien.Pose([0, 0, -half[2]]), half, material=tmat)
            legs = sapien.render.RenderMaterial(base_color=[0.3, 0.3, 0.3, 1])
            tb.add_box_visual(sapien.Pose([0, 0, -TABLE_HEIGHT / 2]), [0.05, 0.05, TABLE_HEIGHT / 2], material=legs)
            tb.initial_pose = sapien.Pose()
            tb.set_scene_idxs([i])
            tables.append(tb.build_static(name=f"table-{i}"))

            wb = self.scene.create_actor_builder()
            bmat = sapien.render.RenderMaterial(base_color=list(e.background), roughness=1.0)
            wb.add_box_visual(sapien.Pose([1.2, 0, 0.3]), [0.02, 2.0, 1.2], material=bmat)
            wb.add_box_visual(sapien.Pose([0, 0, -TABLE_HEIGHT - 0.01]), [2.0, 2.0, 0.01], material=bmat)
            wb.initial_pose = sapien.Pose()
            wb.set_scene_idxs([i])
            wb.build_kinematic(name=f"backdrop-{i}")

            objs.append(self._build_object(asset, i))
        self.table = Actor.merge(tables, name="table")
        self.obj = Actor.merge(objs, name="object")
        self._obj_center_local = torch.tensor([a.center for a in self._assets], device=self.device)
        self._obj_half_extents = torch.tensor([a.extents for a in self._assets], device=self.device) / 2
        self._loaded_key = tuple((s.object_id, s.env_id) for s in self.scenarios)

    def _build_object(self, asset: obj_lib.ObjectAsset, scene_idx: int) -> Actor:
        b = self.scene.create_actor_builder()
        obj_lib.add_to_builder(b, asset, color=_object_color(asset.id))
        b.initial_pose = sapien.Pose([0, 0, 0.5 + scene_idx])
        b.set_scene_idxs([scene_idx])
        actor = b.build(name=f"object-{scene_idx}")
        for entity in actor._objs:
            obj_lib.set_exact_mass(entity, asset)
        return actor

    def _load_lighting(self, options: dict):
        light = env_lib.get_environment(self.scenarios[0].env_id).lighting  # shared by all sub-scenes (SAPIEN)
        self.scene.set_ambient_light(list(light.ambient))
        for k, (direction, color) in enumerate(light.directional):
            self.scene.add_directional_light(list(direction), list(color), shadow=self.enable_shadow and k == 0,
                                             shadow_scale=2, shadow_map_size=1024)

    # ------------------------------------------------------------------ episodes
    def _initialize_episode(self, env_idx: torch.Tensor, options: dict):
        b = len(env_idx)
        xyz, yaw = self._object_start(env_idx)
        q = torch.stack([torch.cos(yaw / 2), torch.zeros_like(yaw), torch.zeros_like(yaw), torch.sin(yaw / 2)], -1)
        self.obj.set_pose(Pose.create_from_pq(xyz, q))
        self.obj.set_linear_velocity(torch.zeros((b, 3), device=self.device))
        self.obj.set_angular_velocity(torch.zeros((b, 3), device=self.device))
        self._init_obj_z = getattr(self, "_init_obj_z", torch.zeros(self.num_envs, device=self.device))
        self._init_obj_z[env_idx] = xyz[:, 2] + self._obj_center_local[env_idx, 2]
        for k, hand in enumerate(self._hands):
            if not hand.floating:
                qpos = hand.rest_qpos().to(self.device)
                hand.robot.set_qpos(qpos.expand(b, -1))
                hand.robot.set_qvel(torch.zeros((b, qpos.shape[-1]), device=self.device))
                continue
            pos, rot = self._initial_wrist_pose(k, env_idx)
            # fingers open, mimic joints consistent (ManiSkill's keyframe), root joints from the wrist pose
            qpos = torch.tensor(hand.keyframes["palm_side"].qpos[0], dtype=torch.float32, device=self.device).repeat(b, 1)
            qpos[:, :6] = pose_to_root_joints(pos, rot, torch.zeros((b, 6), device=self.device), hand.hand_side)
            hand.robot.set_qpos(qpos)
            hand.robot.set_qvel(torch.zeros_like(qpos))
        self._snap = None
        if not hasattr(self, "hold_steps"):
            self.hold_steps = torch.zeros(self.num_envs, dtype=torch.int32, device=self.device)
        self.hold_steps[env_idx] = 0

    def scenario_poses(self, env_idx: torch.Tensor) -> torch.Tensor:
        """(b, 3): the scenario pose (x, y, yaw) of each of these sub-envs."""
        return torch.tensor([self.space.pose(self.scenarios[i].pose_id) for i in env_idx.tolist()], device=self.device)

    def _object_start(self, env_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Where the object's actor frame (its base) starts, (b,3), and its yaw (b,); default: on the table top at
        the scenario pose."""
        p = self.scenario_poses(env_idx)
        return torch.cat([p[:, :2], torch.full_like(p[:, :1], 1e-3)], -1), p[:, 2]

    def _side_wrist_pose(self, hand_idx: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A two-hand task's start pose: the hand out at its own side (left on +y), palm toward the middle, fingers
        forward, thumb up."""
        side = 1.0 if self._hands[hand_idx].hand_side == "left" else -1.0
        pos = torch.tensor([-0.05, side * 0.38, 0.25], device=self.device).expand(b, 3)
        rot = torch.as_tensor(hand_rotation(fingers=(1, 0, 0), palm=(0, -side, 0), palm_sign=self._hands[hand_idx].palm_sign),
                              dtype=torch.float32, device=self.device).expand(b, 3, 3)
        return pos, rot

    def _initial_wrist_pose(self, hand_idx: int, env_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """World wrist position (b,3) and rotation (b,3,3) at reset; default: palm down 0.3 m above the table centre."""
        b = len(env_idx)
        pos = torch.tensor([-0.05, 0.0, 0.30], device=self.device).expand(b, 3)
        rot = torch.as_tensor(hand_rotation(fingers=(1, 0, 0), palm=(0, 0, -1), palm_sign=self._hands[hand_idx].palm_sign),
                              dtype=torch.float32, device=self.device).expand(b, 3, 3)
        return pos, rot

    # ------------------------------------------------------------------ step guards
    def step(self, action):
        if self._agent_slices is not None and action is not None and not isinstance(action, dict):
            action = {k: action[..., sl] for k, sl in self._agent_slices.items()}
        for a in (action.values() if isinstance(action, dict) else [action]):
            if a is None:
                continue
            finite = torch.isfinite(a).all() if isinstance(a, torch.Tensor) else np.isfinite(np.asarray(a, dtype=np.float64)).all()
            if not finite:
                raise ValueError(f"{type(self).__name__}.step got a non-finite action (NaN or inf); the simulation was "
                                 f"not stepped. Action: {a}")
        return super().step(action)

    # ------------------------------------------------------------------ state snapshot
    def snapshot(self) -> dict:
        """Hand and object state after the last physics step, computed once per control step and shared by
        observations, rewards and evaluation."""
        if self._snap is None:
            self._snap = self._snapshot_gpu() if self.gpu_sim_enabled else self._snapshot_cpu()
        return self._snap

    def _snapshot_gpu(self) -> dict:
        snap = dict()
        for k, hand in enumerate(self._hands):
            wrist = hand.robot.links_map[hand.wrist_link]
            snap[f"wrist_pos{k}"], snap[f"wrist_quat{k}"] = wrist.pose.p, wrist.pose.q
            snap[f"fingertips{k}"] = torch.stack([hand.robot.links_map[n].pose.p for n in hand.fingertip_links], 1)
            snap[f"wrist_linvel{k}"] = wrist.linear_velocity
            snap[f"wrist_rot{k}"] = quat_to_matrix(wrist.pose.q)
        pose = self.obj.pose
        snap["obj_pos"], snap["obj_quat"] = pose.p, pose.q
        snap["obj_linvel"], snap["obj_angvel"] = self.obj.linear_velocity, self.obj.angular_velocity
        snap["obj_rot"] = quat_to_matrix(pose.q)
        snap["obj_center"] = pose.p + (snap["obj_rot"] @ self._obj_center_local.unsqueeze(-1)).squeeze(-1)
        return snap

    def _snapshot_cpu(self) -> dict:
        """The same quantities read straight from the single SAPIEN scene into one array: ManiSkill's per-property
        Pose/velocity wrappers and batch-1 torch ops cost far more than the physics reads here. The rotation matrices
        of every hand and the object come from one batched `quat_to_matrix` call (in float64, as the reads are)."""
        snap, rows = dict(), []
        quats = []
        for hand in self._hands:
            links = [hand.robot.links_map[hand.wrist_link]] + [hand.robot.links_map[n] for n in hand.fingertip_links]
            comps = [l._objs[0] for l in links]
            wp = comps[0].entity_pose
            rows += [wp.p, wp.q, comps[0].linear_velocity] + [c.entity_pose.p for c in comps[1:]]
            quats.append(wp.q)
        body = self.obj._bodies[0]
        op = body.entity.pose
        rows += [op.p, op.q, body.linear_velocity, body.angular_velocity]
        quats.append(op.q)
        flat = np.concatenate(rows).astype(np.float32)
        t = torch.from_numpy(flat).unsqueeze(0)
        rots = quat_to_matrix(torch.from_numpy(np.asarray(quats, dtype=np.float64))).float()
        i = 0
        for k in range(len(self._hands)):
            snap[f"wrist_pos{k}"], snap[f"wrist_quat{k}"] = t[:, i : i + 3], t[:, i + 3 : i + 7]
            snap[f"wrist_linvel{k}"] = t[:, i + 7 : i + 10]
            snap[f"fingertips{k}"] = t[:, i + 10 : i + 25].reshape(1, 5, 3)
            snap[f"wrist_rot{k}"] = rots[k : k + 1]
            i += 25
        snap["obj_pos"], snap["obj_quat"] = t[:, i : i + 3], t[:, i + 3 : i + 7]
        snap["obj_linvel"], snap["obj_angvel"] = t[:, i + 7 : i + 10], t[:, i + 10 : i + 13]
        snap["obj_rot"] = rots[-1:]
        rot = rots[-1].numpy()
        snap["obj_center"] = torch.from_numpy(op.p + rot @ self._obj_center_local[0].numpy()).float().unsqueeze(0)
        return snap

    def _after_control_step(self):
        self._snap = None
        self.hold_steps = torch.where(self._holding(), self.hold_steps + 1, torch.zeros_like(self.hold_steps))

    def _holding(self) -> torch.Tensor:
        """The task's success condition at this step (b,) bool; success is it lasting `hold_steps_required` steps."""
        raise NotImplementedError

    def hand_state(self, hand_idx: int = 0) -> dict:
        """World wrist position (b,3), wrist quaternion wxyz (b,4) and fingertip positions (b,5,3) of one hand."""
        s = self.snapshot()
        return dict(wrist_pos=s[f"wrist_pos{hand_idx}"], wrist_quat=s[f"wrist_quat{hand_idx}"],
                    fingertips=s[f"fingertips{hand_idx}"])

    def obj_center(self) -> torch.Tensor:
        """World position of the object's bounding-box centre (the actor frame sits at its base)."""
        return self.snapshot()["obj_center"]

    def reference_poses(self) -> dict[str, torch.Tensor]:
        """Poses (b, 7: xyz + wxyz quaternion) of what the task's subtasks are relative to, recorded per step as
        MimicGen's datagen info: `obj_pose` here; tasks with a second object add theirs (DexPour-v0: `target_pose`)."""
        snap = self.snapshot()
        return dict(obj_pose=torch.cat([snap["obj_pos"], snap["obj_quat"]], -1))

    def lift_amount(self) -> torch.Tensor:
        """How far (m) the object's centre is above where it rested at reset."""
        return self.obj_center()[:, 2] - self._init_obj_z

    def _base_eval(self) -> dict:
        """The evaluate() terms every task shares: success (the task condition held long enough), fail (the object
        left the table), lift_height and the hold counter."""
        return dict(success=self.hold_steps >= self.hold_steps_required,
                    fail=self.snapshot()["obj_pos"][:, 2] < -0.1,
                    lift_height=self.lift_amount(), hold_steps=self.hold_steps.clone())

    # palm centre and its four corners-ish, in the hand base frame (palm surface at |z| = 0.027, fingers along +y)
    _PALM_LOCAL = torch.tensor([[0.0, 0.05, 0.027], [0.03, 0.02, 0.027], [-0.03, 0.02, 0.027], [0.03, 0.09, 0.027],
                                [-0.03, 0.09, 0.027]])

    def palm_points(self, hand_idx: int = 0) -> torch.Tensor:
        """World positions (b, 5, 3) of points on the palm surface of one hand."""
        s = self.snapshot()
        key = f"palm{hand_idx}"
        if key not in s:
            local = self._PALM_LOCAL.to(self.device).clone()
            local[:, 2] *= self._hands[hand_idx].palm_sign
            s[key] = s[f"wrist_pos{hand_idx}"][:, None] + local @ s[f"wrist_rot{hand_idx}"].transpose(1, 2)
        return s[key]

    def hand_points(self, hand_idx: int = 0) -> torch.Tensor:
        """(b, 10, 3): the palm points and fingertips of one hand, what counts as the hand touching something."""
        return torch.cat([self.palm_points(hand_idx), self.snapshot()[f"fingertips{hand_idx}"]], 1)

    def tip_distances(self, hand_idx: int = 0) -> torch.Tensor:
        """(b, 5): each fingertip's distance to the object's bounding box, once a step."""
        s = self.snapshot()
        key = f"tip_dist{hand_idx}"
        if key not in s:
            s[key] = self.distance_to_object(s[f"fingertips{hand_idx}"])
        return s[key]

    def held_by(self, hand_idx: int = 0) -> torch.Tensor:
        """(b,) the hand holds the object: at least two fingertips within 2 cm of its box (around it, not beside
        it) and the object moving with the wrist (< 0.5 m/s relative: not thrown or falling)."""
        s = self.snapshot()
        near = (self.tip_distances(hand_idx) < 0.02).sum(-1) >= 2
        return near & ((s["obj_linvel"] - s[f"wrist_linvel{hand_idx}"]).norm(dim=-1) < 0.5)

    def tilt(self) -> torch.Tensor:
        """(b,) the object's tilt from upright (rad)."""
        return torch.acos(self.snapshot()["obj_rot"][:, 2, 2].clamp(-1, 1))

    def distance_to_object(self, points: torch.Tensor) -> torch.Tensor:
        """Distance (b, k) from world points (b, k, 3) to the object's oriented bounding box (0 inside)."""
        s = self.snapshot()
        local = (points - s["obj_pos"][:, None]) @ s["obj_rot"] - self._obj_center_local[:, None]
        return (local.abs() - self._obj_half_extents[:, None]).clamp_min(0).norm(dim=-1)

    def wrist_action(self, pos: torch.Tensor, rot: torch.Tensor, fingers: torch.Tensor) -> torch.Tensor:
        """Build a `pd_wrist_pose` action from a world wrist pose and finger targets (batched)."""
        return torch.cat([pos, matrix_to_rot6d(rot), fingers], dim=-1)

    def _get_obs_extra(self, info: dict):
        obs = dict()
        for k in range(len(self._hands)):
            hs = self.hand_state(k)
            sfx = f"_{k}" if len(self._hands) > 1 else ""
            obs["wrist_pose" + sfx] = torch.cat([hs["wrist_pos"], hs["wrist_quat"]], -1)
            obs["fingertip_pos" + sfx] = hs["fingertips"].reshape(self.num_envs, -1)
        snap = self.snapshot()
        obs["obj_pose"] = torch.cat([snap["obj_pos"], snap["obj_quat"]], -1)
        obs["obj_vel"] = torch.cat([snap["obj_linvel"], snap["obj_angvel"]], -1)
        # the object's size in its own frame: DexFlyWheel's base also sees a camera, which tells a can's grasp from a
        # box's; without any shape cue a state-only base trained on several categories averages their grasps
        obs["obj_extents"] = 2 * self._obj_half_extents
        obs["goal_pos"] = self._goal()
        return obs

    def _goal(self) -> torch.Tensor:
        goal = self.obj_center().clone()
        goal[:, 2] = self._init_obj_z + self.lift_height
        return goal

    def get_info(self) -> dict:
        info = super().get_info()
        info.update(self._scenario_info())
        return info

    def compute_normalized_dense_reward(self, obs: Any, action: torch.Tensor, info: dict):
        return self.compute_dense_reward(obs=obs, action=action, info=info) / self.max_dense_reward
