"""The object library: a deterministic catalogue of procedural objects, their physical properties, and the on-disk cache
of visual meshes and convex-decomposed (CoACD) collision parts.

An object is built once: the first `get_object(id)` writes `<cache>/objects/<id>-<digest>/` (visual mesh, one file per
convex collision part, `meta.json`) and later calls only read it. The digest covers the object's parameters and the
decomposition settings, so changing either rebuilds; deleting the cache rebuilds the same meshes bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import trimesh

from assets import shapes
from assets.mesh_loader import read_mesh

LIBRARY_VERSION = 3
# CoACD settings: concavity threshold 0.1 keeps cup walls and mug handles as separate hulls while convex objects stay
# one part; the hull cap bounds the contact-pair count (and so the step time); the search budget is the cheapest that
# kept these shapes' parts (CoACD's defaults take several times as long on the whole library).
COACD_PARAMS = dict(threshold=0.1, max_convex_hull=12, preprocess_mode="auto", preprocess_resolution=30,
                    resolution=800, mcts_nodes=10, mcts_iterations=30, mcts_max_depth=2, merge=True, seed=0)


@dataclass(frozen=True)
class ObjectSpec:
    """What an object is, before any mesh exists. `params` are the shape function's keyword arguments."""

    id: str
    category: str
    shape: str
    params: dict
    mass: float  # kg
    friction: float  # static; dynamic is 0.8 of it
    two_hand: bool = False
    source: str = "procedural"  # or the path of a user mesh

    def digest(self) -> str:
        blob = json.dumps([LIBRARY_VERSION, asdict(self), COACD_PARAMS], sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ObjectAsset:
    """A built object: the files SAPIEN loads and the metadata tasks use for placement and grasp planning."""

    spec: ObjectSpec
    dir: Path
    visual_file: Path
    collision_files: tuple[Path, ...]
    extents: tuple[float, float, float]  # axis-aligned size in the object frame (m)
    volume: float  # m^3 of the visual mesh (or of its hull if not watertight)
    collision_volume: float  # m^3 of the convex parts together; mass / this = the density SAPIEN gets
    center: tuple[float, float, float]  # bounding-box centre in the object frame (the frame sits at the base)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def category(self) -> str:
        return self.spec.category

    @property
    def mass(self) -> float:
        return self.spec.mass

    @property
    def friction(self) -> float:
        return self.spec.friction

    @property
    def height(self) -> float:
        return self.extents[2]


# Categories, how many variants each, and how to draw a variant's parameters. Sizes fit the Inspire hand (one-hand
# categories: 4-6 cm across where it is grasped, the Inspire hand's thumb-palm aperture) or need two hands (trays, pots, wide boxes: 25-45 cm, 1.5-3.5 kg).
def _can(r):
    return "cylinder", dict(radius=r.uniform(0.021, 0.029), height=r.uniform(0.08, 0.13))


def _bottle(r):
    return "bottle", dict(radius=r.uniform(0.021, 0.029), height=r.uniform(0.14, 0.20),
                          neck_radius=r.uniform(0.011, 0.015), neck_frac=r.uniform(0.3, 0.4))


def _mug(r):
    return "mug", dict(radius=r.uniform(0.023, 0.029), height=r.uniform(0.08, 0.10), wall=0.004,
                       handle_size=r.uniform(0.035, 0.045))


def _cup(r):
    b = r.uniform(0.019, 0.023)
    return "cup", dict(bottom_radius=b, top_radius=b + r.uniform(0.003, 0.007), height=r.uniform(0.08, 0.11), wall=0.003)


def _bowl(r):
    rad = r.uniform(0.05, 0.065)
    return "bowl", dict(radius=rad, height=r.uniform(0.04, 0.055), foot_radius=rad * 0.5, wall=0.005)


def _box(r):
    return "box", dict(extents=(r.uniform(0.035, 0.05), r.uniform(0.04, 0.07), r.uniform(0.08, 0.12)))


def _ball(r):
    return "ball", dict(radius=r.uniform(0.024, 0.032), flat=0.25)


def _tool(r):
    return "tool", dict(handle_radius=r.uniform(0.014, 0.019), handle_length=r.uniform(0.13, 0.18),
                        head=(r.uniform(0.025, 0.035), r.uniform(0.07, 0.1), r.uniform(0.025, 0.035)))


_TOY_KINDS = ("duck", "car", "cross", "dumbbell", "ring")


def _toy(r, i):
    return "toy", dict(kind=_TOY_KINDS[i % len(_TOY_KINDS)], size=r.uniform(0.05, 0.065))


def _cube(r):
    side = r.uniform(0.05, 0.07)
    return "box", dict(extents=(side, side, side))


def _cylinder(r):
    return "cylinder", dict(radius=r.uniform(0.024, 0.032), height=r.uniform(0.045, 0.07))


def _tray(r):
    return "tray", dict(length=r.uniform(0.36, 0.44), width=r.uniform(0.24, 0.30), height=r.uniform(0.035, 0.05), wall=0.012)


def _pot(r):
    return "pot", dict(radius=r.uniform(0.11, 0.14), height=r.uniform(0.12, 0.16), wall=0.008, handle_len=r.uniform(0.05, 0.07))


def _wide_box(r):
    return "box", dict(extents=(r.uniform(0.32, 0.40), r.uniform(0.20, 0.25), r.uniform(0.14, 0.20)))


# category -> (variants, parameter sampler, mass range kg, two_hand)
CATEGORIES: dict[str, tuple] = {
    "can": (8, _can, (0.15, 0.35), False),
    "bottle": (8, _bottle, (0.15, 0.40), False),
    "mug": (7, _mug, (0.15, 0.30), False),
    "cup": (7, _cup, (0.05, 0.15), False),
    "bowl": (6, _bowl, (0.10, 0.25), False),
    "box": (8, _box, (0.08, 0.30), False),
    "ball": (7, _ball, (0.05, 0.25), False),
    "tool": (6, _tool, (0.10, 0.30), False),
    "toy": (8, _toy, (0.05, 0.20), False),
    # in-hand sized (DexRegrasp-v0's Allegro hand: 5-7 cm across, light enough for its fingertips)
    "cube": (8, _cube, (0.05, 0.12), False),
    "cylinder": (8, _cylinder, (0.05, 0.12), False),
    "tray": (6, _tray, (1.5, 2.5), True),
    "pot": (6, _pot, (2.0, 3.5), True),
    "wide_box": (6, _wide_box, (2.0, 3.5), True),
}


def _catalogue() -> dict[str, ObjectSpec]:
    specs = {}
    for cat, (n, sampler, (m_lo, m_hi), two_hand) in CATEGORIES.items():
        rng = np.random.default_rng(zlib.crc32(cat.encode()))
        for i in range(n):
            shape, params = sampler(rng, i) if sampler is _toy else sampler(rng)
            params = {k: (round(float(v), 4) if isinstance(v, float) else
                          tuple(round(float(x), 4) for x in v) if isinstance(v, tuple) else v) for k, v in params.items()}
            spec = ObjectSpec(id=f"{cat}_{i:02d}", category=cat, shape=shape, params=params,
                              mass=round(float(rng.uniform(m_lo, m_hi)), 3),
                              friction=round(float(rng.uniform(0.7, 1.1)), 3), two_hand=two_hand)
            specs[spec.id] = spec
    return specs


OBJECTS: dict[str, ObjectSpec] = _catalogue()


# How many ways each category looks the same turned about its vertical axis: 0 for round things (any angle), n for
# n-fold, 1 for none (a mug's handle, tools, toys). Generators use it to keep a grasp's approach when they carry it to a
# new object pose: a can turned by 90 degrees needs no different grasp.
SYMMETRY = {"cube": 4, "cylinder": 0, "can": 0, "bottle": 0, "cup": 0, "bowl": 0, "ball": 0, "box": 2, "tray": 2, "pot": 2, "wide_box": 2}


def symmetry(asset: "ObjectAsset") -> int:
    n = SYMMETRY.get(asset.category, 1)
    if n == 2 and abs(asset.extents[0] - asset.extents[1]) < 0.003:  # a square box is 4-fold
        return 4
    return n


def cache_dir() -> Path:
    """Where built assets live: $DEXSUITE_CACHE, else ~/.cache/dexsuite."""
    return Path(os.environ.get("DEXSUITE_CACHE", Path.home() / ".cache" / "dexsuite"))


def object_ids(categories: tuple[str, ...] | None = None) -> list[str]:
    if categories is not None:
        unknown = sorted(set(categories) - set(CATEGORIES) - {s.category for s in OBJECTS.values()})
        if unknown:
            raise ValueError(f"unknown object categories {unknown}; valid: {sorted(CATEGORIES)}")
    return [k for k, s in OBJECTS.items() if categories is None or s.category in categories]


def get_spec(object_id: str) -> ObjectSpec:
    try:
        return OBJECTS[object_id]
    except KeyError:
        raise KeyError(f"unknown object id {object_id!r}; valid ids: {sorted(OBJECTS)}") from None


def procedural_mesh(spec: ObjectSpec) -> trimesh.Trimesh:
    return getattr(shapes, spec.shape)(**spec.params)


def _decompose(mesh: trimesh.Trimesh) -> list[trimesh.Trimesh]:
    import coacd

    coacd.set_log_level("error")
    parts = coacd.run_coacd(coacd.Mesh(np.asarray(mesh.vertices), np.asarray(mesh.faces)), **COACD_PARAMS)
    hulls = [trimesh.Trimesh(v, f).convex_hull for v, f in parts]
    return [h for h in hulls if h.volume > 1e-9]


def _build(spec: ObjectSpec, mesh: trimesh.Trimesh, out: Path) -> None:
    """Write visual mesh, collision parts and meta into `out` atomically (a temp dir renamed into place)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.id}-", dir=out.parent))
    try:
        t0 = time.perf_counter()
        parts = _decompose(mesh)
        if not parts:
            raise ValueError(f"convex decomposition of {spec.id!r} produced no parts (degenerate mesh?)")
        mesh.export(tmp / "visual.obj")
        names = []
        for i, p in enumerate(parts):
            names.append(f"collision_{i:02d}.obj")
            p.export(tmp / names[-1])
        volume = float(mesh.volume) if mesh.is_volume else float(mesh.convex_hull.volume)
        meta = dict(spec=asdict(spec), digest=spec.digest(), extents=[float(x) for x in mesh.extents], volume=volume,
                    collision_volume=float(sum(p.volume for p in parts)),
                    center=[float(x) for x in mesh.bounds.mean(axis=0)],
                    collision_files=names, build_seconds=round(time.perf_counter() - t0, 3))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished the same object first; its files are identical
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _asset_from_dir(spec: ObjectSpec, d: Path) -> ObjectAsset:
    meta = json.loads((d / "meta.json").read_text())
    return ObjectAsset(spec=spec, dir=d, visual_file=d / "visual.obj",
                       collision_files=tuple(d / n for n in meta["collision_files"]),
                       extents=tuple(meta["extents"]), volume=meta["volume"],
                       collision_volume=meta["collision_volume"], center=tuple(meta["center"]))


_loaded: dict[str, ObjectAsset] = {}


def get_object(object_id: str) -> ObjectAsset:
    """The built object, building and caching it first if needed."""
    if object_id in _loaded:
        return _loaded[object_id]
    spec = get_spec(object_id)
    d = cache_dir() / "objects" / f"{spec.id}-{spec.digest()}"
    if not (d / "meta.json").exists():
        if spec.source == "procedural":
            mesh = procedural_mesh(spec)
        else:
            mesh = read_mesh(spec.source, spec.params.get("scale", 1.0))
        _build(spec, mesh, d)
    _loaded[object_id] = asset = _asset_from_dir(spec, d)
    return asset


def register(spec: ObjectSpec) -> None:
    """Adds a (user) object to the library so tasks and scenarios can name it by id."""
    if spec.id in OBJECTS and OBJECTS[spec.id] != spec:
        raise ValueError(f"object id {spec.id!r} is already in the library with other properties; pick another id")
    OBJECTS[spec.id] = spec
    _loaded.pop(spec.id, None)


def load_mesh_object(path: str | Path, object_id: str | None = None, category: str = "custom", scale: float = 1.0,
                     mass: float | None = None, density: float = 500.0, friction: float = 0.8) -> ObjectAsset:
    """Registers a user's mesh file as a library object and builds its collision parts (cached by file content); it is
    then usable in any task by its id:

        obj = load_mesh_object("my_mug.obj", object_id="my_mug", category="mug", mass=0.25)
        env.reset(options={"scenario": f"{obj.id}|studio-wood-grey|p0"})
    """
    mesh = read_mesh(path, scale)
    digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()[:10]
    oid = object_id or f"{Path(path).stem}_{digest}"
    if mass is None:
        vol = mesh.volume if mesh.is_volume else mesh.convex_hull.volume
        mass = float(density * vol)
    spec = ObjectSpec(id=oid, category=category, shape="mesh", params=dict(scale=scale, sha1=digest),
                              mass=round(float(mass), 4), friction=float(friction), source=str(Path(path).resolve()))
    register(spec)
    return get_object(oid)


def add_to_builder(builder, asset: ObjectAsset, color=(0.7, 0.7, 0.7, 1.0)) -> None:
    """Adds the object's convex collision parts (with its friction and a density giving its mass) and its visual mesh
    to a SAPIEN (or ManiSkill) actor builder."""
    import sapien

    mat = sapien.physx.PhysxMaterial(static_friction=asset.friction, dynamic_friction=0.8 * asset.friction,
                                     restitution=0.0)
    density = asset.mass / asset.collision_volume
    for f in asset.collision_files:
        builder.add_convex_collision_from_file(str(f), material=mat, density=density)
    builder.add_visual_from_file(str(asset.visual_file),
                                 material=sapien.render.RenderMaterial(base_color=list(color), roughness=0.5))


def set_exact_mass(entity, asset: ObjectAsset) -> None:
    """PhysX cooks hulls slightly smaller than their mesh volume, so density alone misses the mass by ~2%; rescale
    mass and inertia of a built SAPIEN entity to the catalogue mass."""
    import sapien

    body = entity.find_component_by_type(sapien.physx.PhysxRigidDynamicComponent)
    scale = asset.mass / body.mass
    body.mass = asset.mass
    body.inertia = body.inertia * scale


def _build_one(object_id: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    get_object(object_id)
    return object_id, time.perf_counter() - t0


def build_library(ids: list[str] | None = None, workers: int = 2, progress: bool = True) -> dict[str, float]:
    """Builds every missing object (in `workers` processes); returns seconds per object id."""
    ids = list(OBJECTS) if ids is None else ids
    from tqdm import tqdm

    times: dict[str, float] = {}
    if workers <= 1:
        for i in tqdm(ids, desc="objects", disable=not progress):
            times.update([_build_one(i)])
    else:
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing as mp

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
            for oid, t in tqdm(ex.map(_build_one, ids), total=len(ids), desc="objects", disable=not progress):
                times[oid] = t
    return times


if __name__ == "__main__":
    import tyro

    def main(workers: int = 2) -> None:
        """Builds (or checks) the whole object library in the cache."""
        t0 = time.perf_counter()
        build_library(workers=workers)
        print(f"{len(OBJECTS)} objects in {cache_dir() / 'objects'} ({time.perf_counter() - t0:.1f} s)")

    tyro.cli(main)
