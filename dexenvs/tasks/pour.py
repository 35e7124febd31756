"""DexPour-v0: one Inspire hand grasps a cup or mug holding small spheres and pours them into a bowl.

The source container (the scenario's object: a cup or mug) stands on the table at the scenario pose with `num_particles`
rigid spheres inside; the target bowl (`target`, a library bowl) stands further out on the table, its place set by the
pose id too. Success, held for HOLD_STEPS consecutive control steps: at least 80% of the particles are inside the bowl
(within its inner radius of its axis, below its rim) while the hand still holds the source (two fingertips on it, moving
with the hand, lifted at least 5 cm: not dropped, not resting in the bowl). A particle on the table is not in the bowl
however close it lies. Fail: the source fell off the table.
"""

from __future__ import annotations

import numpy as np
import sapien
import torch
import zlib

from assets import objects as obj_lib
from dexenvs.base import DexEnv
from dexenvs.experts.pour import PourExpert
from dexenvs.registration import register
from dexenvs.scenarios import Workspace
from dexenvs.tasks.spec import FlywheelPreset, TaskSpec, register_task
from mani_skill.utils.structs.actor import Actor
from mani_skill.utils.structs.pose import Pose

HOLD_STEPS = 5
IN_BOWL = 0.8
PARTICLE_RADIUS = 0.006
PARTICLE_MASS = 0.003
BOWLS = tuple(obj_lib.object_ids(("bowl",)))
BOWL_X = 0.13
BOWL_Y = (-0.05, 0.05)


@register("DexPour-v0", max_episode_steps=200)
class DexPourEnv(DexEnv):
    task_name = "pour"
    object_categories = ("cup", "mug")  # open containers; bottles are closed solids in the library
    workspace = Workspace(x=(-0.09, -0.03), y=(-0.08, 0.08))
    max_dense_reward = 6.0
    lift_height = 0.15
    hold_steps_required = HOLD_STEPS
    render_eye = (-0.20, -0.55, 0.45)
    render_target = (0.05, 0.0, 0.12)

    def __init__(self, *args, num_particles: int = 10, target: str = "bowl_00", **kwargs):
        if not 8 <= int(num_particles) <= 20:
            raise ValueError(f"num_particles must be in 8..20, got {num_particles}")
        if target not in BOWLS:
            raise ValueError(f"unknown target {target!r}; valid: {list(BOWLS)}")
        self.num_particles = int(num_particles)
        self.target_id = target
        self.task_kwargs = dict(num_particles=self.num_particles, target=target)
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ scene
    def _load_scene(self, options: dict):
        super()._load_scene(options)
        bowl = obj_lib.get_object(self.target_id)
        bowls, parts = [], [[] for _ in range(self.num_particles)]
        mat = sapien.render.RenderMaterial(base_color=[0.95, 0.55, 0.1, 1.0], roughness=0.4)
        phys = sapien.physx.PhysxMaterial(static_friction=0.5, dynamic_friction=0.4, restitution=0.0)
        for i in range(self.num_envs):
            b = self.scene.create_actor_builder()
            obj_lib.add_to_builder(b, bowl, color=[0.85, 0.85, 0.9, 1.0])
            b.initial_pose = sapien.Pose([BOWL_X, 0, 0.5 + i])
            b.set_scene_idxs([i])
            actor = b.build(name=f"bowl-{i}")
            for entity in actor._objs:
                obj_lib.set_exact_mass(entity, bowl)
            bowls.append(actor)
            for j in range(self.num_particles):
                pb = self.scene.create_actor_builder()
                pb.add_sphere_collision(radius=PARTICLE_RADIUS, material=phys,
                                        density=PARTICLE_MASS / (4 / 3 * np.pi * PARTICLE_RADIUS**3))
                pb.add_sphere_visual(radius=PARTICLE_RADIUS, material=mat)
                pb.initial_pose = sapien.Pose([0, 0.02 * j, 1.0 + i])
                pb.set_scene_idxs([i])
                parts[j].append(pb.build(name=f"particle-{i}-{j}"))
        self.bowl = Actor.merge(bowls, name="bowl")
        self.particles = [Actor.merge(p, name=f"particle-{j}") for j, p in enumerate(parts)]
        r_top = bowl.spec.params["radius"]
        self._bowl_inner = r_top - bowl.spec.params["wall"]
        self._bowl_height = bowl.extents[2]

    def target_xy(self, env_idx: torch.Tensor) -> torch.Tensor:
        """(b, 2): where the bowl stands, a function of the pose id (like the source's pose)."""
        ys = [np.random.default_rng(zlib.crc32(f"pour/target/{self.scenarios[i].pose_id}".encode())).uniform(*BOWL_Y)
              for i in env_idx.tolist()]
        return torch.tensor([[BOWL_X, y] for y in ys], dtype=torch.float32, device=self.device)

    def _particle_slots(self, asset) -> np.ndarray:
        """Object-frame starting positions of the particles: rings stacked from the container's inner bottom."""
        p = asset.spec.params
        inner = (p.get("bottom_radius", p.get("radius")) - p["wall"]) - PARTICLE_RADIUS - 0.002
        per_ring = max(1, int(2 * np.pi * inner / (2 * PARTICLE_RADIUS + 0.002))) if inner > PARTICLE_RADIUS else 1
        slots = []
        for j in range(self.num_particles):
            ring, k = divmod(j, per_ring)
            ang = 2 * np.pi * k / per_ring + ring * 0.5
            r = inner if per_ring > 1 else 0.0
            slots.append([r * np.cos(ang), r * np.sin(ang), p["wall"] + PARTICLE_RADIUS + 0.003 + ring * (2 * PARTICLE_RADIUS + 0.002)])
        return np.asarray(slots)  # the body axis is the actor frame's z (a mug's handle only shifts its bbox)

    def _initialize_episode(self, env_idx: torch.Tensor, options: dict):
        super()._initialize_episode(env_idx, options)
        b = len(env_idx)
        xy = self.target_xy(env_idx)
        q = torch.tensor([1.0, 0, 0, 0], device=self.device).expand(b, 4)
        self.bowl.set_pose(Pose.create_from_pq(torch.cat([xy, torch.full((b, 1), 1e-3, device=self.device)], -1), q))
        self.bowl.set_linear_velocity(torch.zeros((b, 3), device=self.device))
        self.bowl.set_angular_velocity(torch.zeros((b, 3), device=self.device))
        src_pos, src_yaw = self._object_start(env_idx)
        slots = [self._particle_slots(self._assets[i]) for i in env_idx.tolist()]
        for j, part in enumerate(self.particles):
            local = torch.tensor(np.stack([s[j] for s in slots]), dtype=torch.float32, device=self.device)
            c, s = torch.cos(src_yaw), torch.sin(src_yaw)
            world = src_pos + torch.stack([c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1], local[:, 2]], -1)
            part.set_pose(Pose.create_from_pq(world, q))
            part.set_linear_velocity(torch.zeros((b, 3), device=self.device))
            part.set_angular_velocity(torch.zeros((b, 3), device=self.device))

    # ------------------------------------------------------------------ success terms
    def particle_positions(self) -> torch.Tensor:
        """(b, n, 3) world positions of the particles."""
        snap = self.snapshot()
        if "particles" not in snap:
            if self.gpu_sim_enabled:
                snap["particles"] = torch.stack([p.pose.p for p in self.particles], 1)
                snap["bowl_pos"] = self.bowl.pose.p
            else:  # straight from the one SAPIEN scene, as the base snapshot does
                rows = [p._bodies[0].entity.pose.p for p in self.particles] + [self.bowl._bodies[0].entity.pose.p]
                t = torch.from_numpy(np.stack(rows).astype(np.float32)).unsqueeze(0)
                snap["particles"], snap["bowl_pos"] = t[:, :-1], t[:, -1]
        return snap["particles"]

    def bowl_position(self) -> torch.Tensor:
        """(b, 3) where the bowl's base is now (a knocked bowl counts where it went)."""
        self.particle_positions()
        return self.snapshot()["bowl_pos"]

    def reference_poses(self) -> dict[str, torch.Tensor]:
        """Adds the bowl's pose: augmentation carries the transfer and the pour relative to it."""
        pose = self.bowl.pose
        return dict(super().reference_poses(), target_pose=torch.cat([self.bowl_position(), pose.q.to(self.device)], -1))

    def in_bowl(self) -> torch.Tensor:
        """(b, n) bool: particle inside the bowl: within its inner radius of the bowl's axis, above its base and
        below its rim. A particle on the table beside the bowl is outside."""
        pts = self.particle_positions()
        bowl = self.bowl_position()
        radial = (pts[..., :2] - bowl[:, None, :2]).norm(dim=-1)
        height = pts[..., 2] - bowl[:, None, 2]
        return (radial < self._bowl_inner) & (height < self._bowl_height + 0.01) & (height > 0.0)

    def _get_obs_extra(self, info: dict):
        obs = super()._get_obs_extra(info)
        obs["bowl_pos"] = self.bowl_position()
        obs["particle_pos"] = self.particle_positions().reshape(self.num_envs, -1)
        return obs

    def _terms(self) -> dict:
        snap = self.snapshot()
        if "terms" not in snap:
            held = self.held_by(0) & (self.lift_amount() > 0.05)
            snap["terms"] = dict(held=held, poured=self.in_bowl().float().mean(-1))
        return snap["terms"]

    def _holding(self) -> torch.Tensor:
        t = self._terms()
        return t["held"] & (t["poured"] >= IN_BOWL)

    def evaluate(self):
        t = self._terms()
        return dict(self._base_eval(), held=t["held"], poured=t["poured"], tilt=self.tilt())

    def compute_dense_reward(self, obs, action, info):
        reach = 1 - torch.tanh(5.0 * self.tip_distances(0).mean(-1))
        held = info["held"].float()
        # transport: the container's mouth over the bowl
        center = self.obj_center()
        over = 1 - torch.tanh(5.0 * (center[:, :2] - self.bowl_position()[:, :2]).norm(dim=-1))
        tilt = (info["tilt"] / (np.pi / 2)).clamp(0, 1) * over
        reward = reach + held * (1 + over + tilt) + 2.0 * info["poured"]
        return torch.where(info["success"], torch.full_like(reward, self.max_dense_reward), reward)


SPEC = register_task(TaskSpec(
    name="pour", env_cls=DexPourEnv, expert=PourExpert, carry_phase="transfer",
    # carrying and pouring happen over the bowl: those subtasks move with it
    references={"transfer": "target", "pour": "target", "hold": "target"},
    flywheel=FlywheelPreset(
        seed_scenarios=("mug_00|studio-white-blue|p25", "cup_00|studio-white-blue|p25"),
        train_steps=(4000, 5000, 12000), cover=True,
        max_slip=0.0),  # the scripted seed itself slides its mug in the hand as it tilts
    reference_t_oep=(36.1, 55.6, 85.8), reference_replay=44.4))
