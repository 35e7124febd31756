"""Physical validation in SAPIEN: a grasp is kept when it holds against gravity from six directions.

Each grasp is simulated six times at once, its hand's base turned so that gravity acts along +-x, +-y, +-z of the hand
frame. The hand is the ManiSkill agent's URDF with ManiSkill's drives and fingertip material and the scene has
ManiSkill's physics settings (those DexRegrasp-v0 runs with); the contact fingers are driven a few millimetres into the
surface, as a real hand squeezes. Kept: over `duration` the object moved less than `max_move` and turned less than
`max_turn` in the hand, in every direction."""

from __future__ import annotations

import numpy as np
import sapien
import torch
from scipy.spatial.transform import Rotation

from mani_skill.utils.structs.types import DefaultMaterialsConfig, SceneConfig

from assets import objects as obj_lib
from dexenvs.robots import ROBOTS
from generators.grasps.hand import HandModel
from generators.grasps.sampling import Candidates

GRAVITY_DIRECTIONS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64)
SPACING = 0.6  # m between copies: far beyond any contact offset


def squeeze_targets(hand: HandModel, c: Candidates, depth: float) -> torch.Tensor:
    """Joint targets that push each contact fingertip `depth` along its inward normal (finite-difference Jacobian
    per finger, least squares); other fingers keep their joints."""
    q = c.q
    tips = hand.tips(q)
    target = q.clone()
    eps = 1e-4
    for fi, f in enumerate(hand.fingers):
        cols = []
        for j in f.joints:
            dq = q.clone()
            dq[:, j] += eps
            cols.append((hand.tips(dq)[:, fi] - tips[:, fi]) / eps)
        jac = torch.stack(cols, -1)  # (B, 3, 4)
        push = -(c.R @ c.normals[:, fi, :, None])[..., 0] * depth  # the inward normal in the hand frame
        step = torch.linalg.lstsq(jac, push[..., None]).solution[..., 0]
        target[:, list(f.joints)] += torch.where(c.fingers[:, fi, None], step, torch.zeros_like(step))
    return hand.clamp(target)


class Validator:
    """One SAPIEN scene holding `batch` x 6 hand + object copies, reused batch after batch."""

    def __init__(self, robot_uid: str, object_id: str, batch: int, sim_freq: int = 120):
        cls = ROBOTS[robot_uid]
        sc = SceneConfig()  # ManiSkill's defaults, which DexEnv runs with
        sapien.physx.set_shape_config(contact_offset=sc.contact_offset, rest_offset=sc.rest_offset)
        sapien.physx.set_body_config(solver_position_iterations=sc.solver_position_iterations,
                                     solver_velocity_iterations=sc.solver_velocity_iterations,
                                     sleep_threshold=sc.sleep_threshold)
        sapien.physx.set_scene_config(gravity=sc.gravity, bounce_threshold=sc.bounce_threshold, enable_pcm=sc.enable_pcm,
                                      enable_tgs=sc.enable_tgs, enable_ccd=sc.enable_ccd,
                                      enable_enhanced_determinism=sc.enable_enhanced_determinism,
                                      enable_friction_every_iteration=sc.enable_friction_every_iteration,
                                      cpu_workers=sc.cpu_workers)
        sapien.physx.set_default_material(**DefaultMaterialsConfig().dict())
        self.scene = sapien.Scene()
        self.scene.set_timestep(1.0 / sim_freq)
        self.sim_freq = sim_freq
        self.asset = obj_lib.get_object(object_id)
        loader = self.scene.create_urdf_loader()
        loader.fix_root_link = True
        tip = sapien.physx.PhysxMaterial(2.0, 1.0, 0.0)  # ManiSkill's Allegro fingertip material
        self.robots, self.objects = [], []
        n = batch * len(GRAVITY_DIRECTIONS)
        for k in range(n):
            r = loader.load(cls.urdf_path_resolved())
            for link in r.get_links():
                if link.name in cls.fingertip_links:
                    for s in link.get_collision_shapes():
                        s.set_physical_material(tip)
                        s.set_patch_radius(0.1)
                        s.set_min_patch_radius(0.1)
            for j in r.get_active_joints():
                j.set_drive_properties(400.0, 10.0, 50.0)
            b = self.scene.create_actor_builder()
            obj_lib.add_to_builder(b, self.asset)
            o = b.build(name=f"object-{k}")
            obj_lib.set_exact_mass(o, self.asset)
            self.robots.append(r)
            self.objects.append(o)
        names = [j.name for j in self.robots[0].get_active_joints()]
        self.order = [cls.action_joints.index(n) for n in names]
        self.batch = batch
        # hand base orientations putting world gravity (-z) along each direction of the hand frame
        self.base_quat = [Rotation.align_vectors([[0, 0, -1]], [d])[0].as_quat(scalar_first=True)
                          for d in GRAVITY_DIRECTIONS]

    def run(self, c: Candidates, targets: torch.Tensor, duration: float = 1.0) -> dict[str, np.ndarray]:
        """Per grasp (len(c) <= batch): the largest move (m) and turn (rad) of the object in the hand over six gravity
        directions."""
        m = len(c)
        nd = len(GRAVITY_DIRECTIONS)
        start = []
        for i in range(self.batch * nd):
            g, d = divmod(i, nd)
            robot, obj = self.robots[i], self.objects[i]
            base = sapien.Pose([SPACING * (i % 40), SPACING * (i // 40), 1.0], self.base_quat[d])
            if g >= m:  # an unused slot: park its object away from its hand
                robot.set_root_pose(base)
                obj.set_pose(sapien.Pose([SPACING * (i % 40), SPACING * (i // 40), -5.0]))
                continue
            q = c.q[g].numpy()[self.order]
            robot.set_root_pose(base)
            robot.set_qpos(q)
            robot.set_qvel(np.zeros_like(q))
            for j, tq in zip(robot.get_active_joints(), targets[g].numpy()[self.order]):
                j.set_drive_target(float(tq))
            t_h, R_h = c.t[g].numpy(), c.R[g].numpy()
            in_hand = sapien.Pose(t_h, Rotation.from_matrix(R_h).as_quat(scalar_first=True))
            pose = base * in_hand
            obj.set_pose(pose)
            body = obj.find_component_by_type(sapien.physx.PhysxRigidDynamicComponent)
            body.set_linear_velocity([0, 0, 0])
            body.set_angular_velocity([0, 0, 0])
            start.append((base, in_hand))
        for _ in range(int(round(duration * self.sim_freq))):
            self.scene.step()
        move = np.zeros((m, nd))
        turn = np.zeros((m, nd))
        for i in range(m * nd):
            g, d = divmod(i, nd)
            base, in_hand = start[i]
            now = base.inv() * self.objects[i].get_pose()
            move[g, d] = np.linalg.norm(now.p - in_hand.p)
            rel = Rotation.from_quat(now.q, scalar_first=True) * Rotation.from_quat(in_hand.q, scalar_first=True).inv()
            turn[g, d] = rel.magnitude()
        return dict(hold_move=move.max(1), hold_turn=turn.max(1))
