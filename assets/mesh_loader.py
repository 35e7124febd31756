"""Turn a user's mesh file (OBJ, STL, GLB/GLTF, PLY) into a library object: scaled, resting on z = 0 and centred on z,
convex-decomposed with CoACD and cached like the procedural objects. It is then usable in any task by its id:

    from assets.mesh_loader import load_mesh_object
    obj = load_mesh_object("my_mug.obj", object_id="my_mug", category="mug", mass=0.25)
    env.reset(options={"scenario": f"{obj.id}|studio-wood-grey|p0"})
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import trimesh

from assets import objects as obj_lib

SUPPORTED = (".obj", ".stl", ".glb", ".gltf", ".ply", ".off")


def read_mesh(path: str | Path, scale: float = 1.0) -> trimesh.Trimesh:
    """Reads and normalizes a mesh; raises FileNotFoundError / ValueError that say what is wrong and what is valid."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"mesh file {str(path)!r} does not exist")
    if path.suffix.lower() not in SUPPORTED:
        raise ValueError(f"unsupported mesh format {path.suffix!r} for {str(path)!r}; valid formats: {list(SUPPORTED)}")
    try:
        loaded = trimesh.load(path, force="mesh", process=True)
    except Exception as e:  # trimesh raises many types for malformed files
        raise ValueError(f"could not read mesh {str(path)!r} ({type(e).__name__}: {e}); it must be a valid "
                         f"{path.suffix.lstrip('.').upper()} file with at least one triangle") from e
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0 or len(loaded.vertices) < 4:
        raise ValueError(f"mesh {str(path)!r} has no triangles; it must contain a surface with at least one triangle")
    if not np.isfinite(loaded.vertices).all():
        raise ValueError(f"mesh {str(path)!r} has non-finite vertex coordinates")
    mesh = loaded.copy()
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    mesh.apply_scale(scale)
    if mesh.extents.min() < 1e-4:
        raise ValueError(f"mesh {str(path)!r} is flat or degenerate (extents {mesh.extents.round(5).tolist()} m "
                         f"after scale {scale}); objects need volume for collision shapes")
    lo, hi = mesh.bounds
    mesh.apply_translation([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])
    return mesh


def load_mesh_object(path: str | Path, object_id: str | None = None, category: str = "custom", scale: float = 1.0,
                     mass: float | None = None, density: float = 500.0, friction: float = 0.8) -> obj_lib.ObjectAsset:
    """Registers the mesh as a library object and builds its collision parts (cached by file content)."""
    mesh = read_mesh(path, scale)
    digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()[:10]
    oid = object_id or f"{Path(path).stem}_{digest}"
    if mass is None:
        vol = mesh.volume if mesh.is_volume else mesh.convex_hull.volume
        mass = float(density * vol)
    spec = obj_lib.ObjectSpec(id=oid, category=category, shape="mesh", params=dict(scale=scale, sha1=digest),
                              mass=round(float(mass), 4), friction=float(friction), source=str(Path(path).resolve()))
    obj_lib.register(spec)
    return obj_lib.get_object(oid)
