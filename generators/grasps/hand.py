"""The hand as the grasp generator sees it: batched forward kinematics (pytorch_kinematics, from the same URDF the
simulator loads) and collision points read from SAPIEN's own collision shapes, so planned grasps and simulated grasps
see the same geometry."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytorch_kinematics as pk
import torch

from dexenvs.robots import ROBOTS, Finger


def _surface_points(half: np.ndarray, spacing: float) -> np.ndarray:
    """Points on the surface of a box of half extents `half`, about `spacing` apart."""
    pts = []
    n = [max(2, int(np.ceil(2 * h / spacing)) + 1) for h in half]
    grids = [np.linspace(-h, h, k) for h, k in zip(half, n)]
    for axis in range(3):
        a, b = [grids[i] for i in range(3) if i != axis]
        A, B = np.meshgrid(a, b, indexing="ij")
        for sign in (-1, 1):
            p = np.zeros((A.size, 3))
            p[:, axis] = sign * half[axis]
            p[:, [i for i in range(3) if i != axis]] = np.stack([A.ravel(), B.ravel()], 1)
            pts.append(p)
    return np.unique(np.round(np.concatenate(pts), 6), axis=0)


class HandModel:
    """Kinematics of a fixed-base hand in its base frame. Joint vectors are in the hand's action order
    (`joint_names`); `tips(q)` are the fingertip sphere centres, `points(q)` the box surface points of every other
    link."""

    def __init__(self, robot_uid: str, spacing: float = 0.012, device: str = "cpu"):
        cls = ROBOTS[robot_uid]
        self.uid, self.device = robot_uid, torch.device(device)
        self.urdf = cls.urdf_path_resolved()
        self.joint_names: list[str] = list(cls.action_joints)
        self.fingers: tuple[Finger, ...] = cls.fingers
        self.tip_radius: float = cls.tip_radius
        self.chain = pk.build_chain_from_urdf(open(self.urdf, "rb").read()).to(device=self.device)
        if self.chain.get_joint_parameter_names() != self.joint_names:
            raise ValueError(f"{robot_uid}: URDF joint order {self.chain.get_joint_parameter_names()} differs from "
                             f"the action order {self.joint_names}")
        low, high = self._limits()
        self.low, self.high = torch.tensor(low, device=self.device), torch.tensor(high, device=self.device)
        self.point_links, self.point_local = self._collision_points(spacing)

    def _sapien_robot(self):
        import sapien

        scene = sapien.Scene()
        loader = scene.create_urdf_loader()
        loader.fix_root_link = True
        return scene, loader.load(self.urdf)

    def _limits(self) -> tuple[np.ndarray, np.ndarray]:
        _, robot = self._sapien_robot()
        by_name = {j.name: j.get_limits()[0] for j in robot.get_active_joints()}
        lim = np.array([by_name[n] for n in self.joint_names], dtype=np.float32)
        return lim[:, 0], lim[:, 1]

    def _collision_points(self, spacing: float) -> tuple[list[str], list[torch.Tensor]]:
        """Per link (but the fingertips, which are spheres): points on its collision boxes in the link frame."""
        import sapien

        _, robot = self._sapien_robot()
        tips = {f.tip_link for f in self.fingers}
        names, local = [], []
        for link in robot.get_links():
            if link.name in tips:
                continue
            pts = []
            for shape in link.get_collision_shapes():
                if not isinstance(shape, sapien.physx.PhysxCollisionShapeBox):
                    raise ValueError(f"{self.uid}: link {link.name} has a {type(shape).__name__} collision shape; the "
                                     f"grasp generator models links as boxes and fingertips as spheres")
                p = _surface_points(np.asarray(shape.half_size), spacing)
                pose = shape.local_pose
                pts.append(p @ pose.to_transformation_matrix()[:3, :3].T + pose.p)
            if pts:
                names.append(link.name)
                local.append(torch.tensor(np.concatenate(pts), dtype=torch.float32, device=self.device))
        return names, local

    def clamp(self, q: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(q, self.high), self.low)

    def fk(self, q: torch.Tensor, links: list[str]) -> torch.Tensor:
        """(B, len(links), 4, 4) link frames in the hand's base frame."""
        frames = self.chain.forward_kinematics(q)
        return torch.stack([frames[n].get_matrix() for n in links], 1)

    def tips(self, q: torch.Tensor) -> torch.Tensor:
        """(B, fingers, 3): fingertip sphere centres."""
        return self.fk(q, [f.tip_link for f in self.fingers])[..., :3, 3]

    def tips_and_points(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fingertip centres (B, F, 3) and every other link's collision points (B, P, 3), from one FK pass."""
        frames = self.chain.forward_kinematics(q)
        tips = torch.stack([frames[f.tip_link].get_matrix()[:, :3, 3] for f in self.fingers], 1)
        pts = []
        for name, local in zip(self.point_links, self.point_local):
            m = frames[name].get_matrix()
            pts.append(local @ m[:, :3, :3].transpose(1, 2) + m[:, None, :3, 3])
        return tips, torch.cat(pts, 1)

    def finger_mask(self, finger_idx: int) -> torch.Tensor:
        m = torch.zeros(len(self.joint_names), dtype=torch.bool, device=self.device)
        m[list(self.fingers[finger_idx].joints)] = True
        return m


@lru_cache(maxsize=None)
def hand_model(robot_uid: str) -> HandModel:
    return HandModel(robot_uid)
