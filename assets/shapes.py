"""Procedural mesh families. Every function is pure: the same parameters give the same mesh.

All meshes are in metres, z up, resting on z = 0 and centred on the z axis, so a pose (x, y, yaw) on the table top
places them without further offsets.
"""

from __future__ import annotations

import numpy as np
import trimesh


def _revolve(profile: list[tuple[float, float]], sections: int = 40) -> trimesh.Trimesh:
    """Solid of revolution of a closed (r, z) polyline around z; the profile is traced from the axis at the bottom,
    out and up, and back to the axis at the top, so the result is watertight."""
    mesh = trimesh.creation.revolve(np.asarray(profile, dtype=np.float64), sections=sections)
    mesh.fix_normals()
    return mesh


def cylinder(radius: float, height: float) -> trimesh.Trimesh:
    m = trimesh.creation.cylinder(radius=radius, height=height, sections=40)
    m.apply_translation([0, 0, height / 2])
    return m


def box(extents: tuple[float, float, float]) -> trimesh.Trimesh:
    m = trimesh.creation.box(extents=extents)
    m.apply_translation([0, 0, extents[2] / 2])
    return m


def ball(radius: float, flat: float = 0.0) -> trimesh.Trimesh:
    """A sphere; `flat` > 0 cuts a flat base at that fraction of the radius so it rests instead of rolling away
    (PhysX has no rolling resistance, so a faceted sphere wanders across the table on its own)."""
    m = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    if flat > 0:  # flatten the cap below the cut onto the plane; the mesh stays closed
        v = m.vertices.copy()
        v[:, 2] = np.maximum(v[:, 2], -radius * (1 - flat))
        m = trimesh.Trimesh(v, m.faces, process=True)
    m.apply_translation([0, 0, -m.bounds[0, 2]])
    return m


def bottle(radius: float, height: float, neck_radius: float, neck_frac: float) -> trimesh.Trimesh:
    body = height * (1 - neck_frac)
    shoulder = body + height * neck_frac * 0.35
    return _revolve(
        [(0, 0), (radius, 0), (radius, body), (neck_radius, shoulder), (neck_radius, height), (0, height)]
    )


def cup(bottom_radius: float, top_radius: float, height: float, wall: float) -> trimesh.Trimesh:
    """An open tapered cup with a solid bottom of thickness `wall`."""
    return _revolve(
        [
            (0, 0),
            (bottom_radius, 0),
            (top_radius, height),
            (top_radius - wall, height),
            (bottom_radius - wall, wall),
            (0, wall),
        ]
    )


def bowl(radius: float, height: float, foot_radius: float, wall: float) -> trimesh.Trimesh:
    ts = np.linspace(0, 1, 9)
    outer = [(foot_radius + (radius - foot_radius) * np.sin(t * np.pi / 2), height * (1 - np.cos(t * np.pi / 2))) for t in ts]
    inner = [(max(r - wall, 0.0), max(z, wall)) for r, z in reversed(outer)]
    return _revolve([(0, 0)] + outer + inner[:-1] + [(0, wall)])


def mug(radius: float, height: float, wall: float, handle_size: float) -> trimesh.Trimesh:
    body = cup(radius, radius, height, wall)
    # The handle is a half torus standing on the +x side, from 25% to 75% of the height.
    r_major = handle_size / 2
    tube = max(wall, 0.006)
    handle = trimesh.creation.torus(major_radius=r_major, minor_radius=tube, major_sections=24, minor_sections=10)
    handle.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
    keep = handle.vertices[:, 0] > -1e-9
    handle.update_vertices(keep)
    handle = trimesh.convex.convex_hull(handle) if not handle.is_watertight else handle
    handle.apply_translation([radius - tube * 0.5, 0, height / 2])
    return trimesh.util.concatenate([body, handle])


def tool(handle_radius: float, handle_length: float, head: tuple[float, float, float]) -> trimesh.Trimesh:
    """A hammer-like tool lying on the table: a handle along x with a box head at +x."""
    h = trimesh.creation.cylinder(radius=handle_radius, height=handle_length, sections=24)
    h.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0]))
    head_mesh = trimesh.creation.box(extents=head)
    head_mesh.apply_translation([handle_length / 2 + head[0] / 2 - handle_radius, 0, 0])
    m = trimesh.util.concatenate([h, head_mesh])
    m.apply_translation([-m.bounds.mean(axis=0)[0], 0, -m.bounds[0, 2]])
    return m


def toy(kind: str, size: float) -> trimesh.Trimesh:
    """Small composite toys: duck (two spheres), car (box + wheels), cross (two bars), dumbbell, ring (torus)."""
    if kind == "duck":
        body = trimesh.creation.icosphere(subdivisions=2, radius=size * 0.5)
        body.apply_scale([1.2, 1.0, 0.8])
        head = trimesh.creation.icosphere(subdivisions=2, radius=size * 0.3)
        head.apply_translation([size * 0.35, 0, size * 0.45])
        m = trimesh.util.concatenate([body, head])
    elif kind == "car":
        chassis = trimesh.creation.box(extents=[size * 1.4, size * 0.7, size * 0.4])
        cabin = trimesh.creation.box(extents=[size * 0.7, size * 0.6, size * 0.3])
        cabin.apply_translation([0, 0, size * 0.35])
        wheels = []
        for sx in (-1, 1):
            for sy in (-1, 1):
                w = trimesh.creation.cylinder(radius=size * 0.2, height=size * 0.12, sections=16)
                w.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
                w.apply_translation([sx * size * 0.45, sy * size * 0.38, -size * 0.15])
                wheels.append(w)
        m = trimesh.util.concatenate([chassis, cabin] + wheels)
    elif kind == "cross":
        a = trimesh.creation.box(extents=[size * 1.2, size * 0.4, size * 0.5])
        b = trimesh.creation.box(extents=[size * 0.4, size * 1.2, size * 0.5])
        m = trimesh.util.concatenate([a, b])
    elif kind == "dumbbell":
        bar = trimesh.creation.cylinder(radius=size * 0.12, height=size * 1.2, sections=16)
        bar.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0]))
        ends = []
        for sx in (-1, 1):
            e = trimesh.creation.icosphere(subdivisions=2, radius=size * 0.3)
            e.apply_translation([sx * size * 0.6, 0, 0])
            ends.append(e)
        m = trimesh.util.concatenate([bar] + ends)
    elif kind == "ring":
        m = trimesh.creation.torus(major_radius=size * 0.4, minor_radius=size * 0.15, major_sections=32, minor_sections=12)
    else:
        raise ValueError(f"unknown toy kind {kind!r}; valid: duck, car, cross, dumbbell, ring")
    m.apply_translation([-m.bounds.mean(axis=0)[0], -m.bounds.mean(axis=0)[1], -m.bounds[0, 2]])
    return m


def tray(length: float, width: float, height: float, wall: float) -> trimesh.Trimesh:
    parts = [box((length, width, wall))]
    for sx in (-1, 1):
        p = box((wall, width, height))
        p.apply_translation([sx * (length - wall) / 2, 0, 0])
        parts.append(p)
    for sy in (-1, 1):
        p = box((length - 2 * wall, wall, height))
        p.apply_translation([0, sy * (width - wall) / 2, 0])
        parts.append(p)
    return trimesh.util.concatenate(parts)


def pot(radius: float, height: float, wall: float, handle_len: float) -> trimesh.Trimesh:
    body = cup(radius, radius, height, wall)
    parts = [body]
    for sx in (-1, 1):
        h = box((handle_len, 0.05, 0.02))
        h.apply_translation([sx * (radius + handle_len / 2 - 0.005), 0, height - 0.035])
        parts.append(h)
    return trimesh.util.concatenate(parts)
