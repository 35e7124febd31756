"""Reading a user's mesh file (OBJ, STL, GLB/GLTF, PLY): checked, scaled, resting on z = 0 and centred on x and y.
The library turns it into an object (`assets.objects.load_mesh_object`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh


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
