"""The object as the grasp generator sees it: the library's convex collision parts (what SAPIEN simulates) as half-space
sets, giving a batched signed distance with its gradient, and surface samples with outward normals."""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from assets import objects as obj_lib
from dexenvs.cli import DexError


class ObjectShape:
    """Signed distance of points in the object frame: inside a convex part it is exact (the nearest face plane); outside
    it is the largest plane distance, exact in front of a face and a slight underestimate near edges and corners."""

    def __init__(self, object_id: str, n_surface: int = 4096, device: str = "cpu"):
        self.asset = obj_lib.get_object(object_id)
        self.object_id = object_id
        normals, offsets, part = [], [], []
        parts = []
        for k, f in enumerate(self.asset.collision_files):
            hull = trimesh.load(f, force="mesh").convex_hull
            if not hull.is_volume:
                raise DexError(f"object {object_id}: collision part {f.name} is not a closed convex volume",
                               hint="rebuild the library entry (delete its cache directory)")
            n = hull.face_normals
            d = np.einsum("ij,ij->i", n, hull.triangles[:, 0])
            key = np.unique(np.round(np.c_[n, d], 5), axis=0)  # coplanar triangles share one plane
            normals.append(key[:, :3])
            offsets.append(key[:, 3])
            part.append(np.full(len(key), k))
            parts.append(hull)
        self.n_parts = len(parts)
        self.normals = torch.tensor(np.concatenate(normals), dtype=torch.float32, device=device)
        self.offsets = torch.tensor(np.concatenate(offsets), dtype=torch.float32, device=device)
        self.part = torch.tensor(np.concatenate(part), device=device)
        mesh = trimesh.util.concatenate(parts)
        pts, faces = trimesh.sample.sample_surface_even(mesh, n_surface, seed=0) if hasattr(trimesh.sample, "sample_surface_even") \
            else trimesh.sample.sample_surface(mesh, n_surface, seed=0)
        keep = self.sdf(torch.tensor(pts, dtype=torch.float32, device=device))[0].abs() < 1e-4  # not inside another part
        self.surface = torch.tensor(pts, dtype=torch.float32, device=device)[keep]
        self.surface_normals = torch.tensor(mesh.face_normals[faces], dtype=torch.float32, device=device)[keep]
        self.radius = float(np.linalg.norm(mesh.vertices - mesh.bounds.mean(0), axis=1).max())
        self.center = torch.tensor(mesh.bounds.mean(0), dtype=torch.float32, device=device)

    def sdf(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Signed distance (...,) of points x (..., 3) and its gradient (..., 3), the outward normal of the face that
        decides it."""
        d = x @ self.normals.T - self.offsets  # (..., planes)
        if self.n_parts == 1:
            dist, idx = d.max(-1)
            return dist, self.normals[idx]
        per_part = torch.full(x.shape[:-1] + (self.n_parts,), -float("inf"), device=x.device, dtype=x.dtype)
        per_part = per_part.scatter_reduce(-1, self.part.expand(d.shape), d, reduce="amax")
        dist, k = per_part.min(-1)
        # the deciding plane: the max within the nearest part
        masked = torch.where(self.part == k.unsqueeze(-1), d, torch.full_like(d, -float("inf")))
        return dist, self.normals[masked.argmax(-1)]
