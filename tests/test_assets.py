"""The object and environment library."""

import json
from collections import Counter

import numpy as np
import pytest
import sapien

from assets import environments as env_lib
from assets import objects as obj_lib
from assets.objects import load_mesh_object


def test_catalogue_size_and_categories():
    cats = Counter(s.category for s in obj_lib.OBJECTS.values() if s.source == "procedural")
    assert sum(cats.values()) >= 80 and len(cats) >= 10
    assert {"tray", "pot", "wide_box"} <= set(cats)


def test_every_object_has_metadata_and_loads_in_sim():
    scene = sapien.Scene()
    scene.set_timestep(1 / 120)
    scene.add_ground(0)
    actors = []
    for i, oid in enumerate(o for o, s in obj_lib.OBJECTS.items() if s.source == "procedural"):
        a = obj_lib.get_object(oid)
        assert a.collision_files and all(f.exists() for f in a.collision_files)
        assert a.mass > 0 and 0.3 < a.friction < 2 and min(a.extents) > 0.005
        b = scene.create_actor_builder()
        obj_lib.add_to_builder(b, a)
        b.set_initial_pose(sapien.Pose([(i % 10) * 0.6, (i // 10) * 0.6, 0.01]))
        actor = b.build(name=oid)
        obj_lib.set_exact_mass(actor, a)
        actors.append((a, actor))
    for _ in range(120):
        scene.step()
    for a, actor in actors:
        rb = actor.find_component_by_type(sapien.physx.PhysxRigidDynamicComponent)
        assert abs(rb.mass - a.mass) < 1e-4 * max(1, a.mass), a.id
        assert np.isfinite(actor.pose.p).all() and -0.01 < actor.pose.p[2] < 0.5, a.id


def test_rebuild_is_deterministic(tmp_path, monkeypatch):
    oid = "mug_00"
    ref = obj_lib.get_object(oid)
    monkeypatch.setenv("DEXSUITE_CACHE", str(tmp_path))
    obj_lib._loaded.pop(oid, None)
    fresh = obj_lib.get_object(oid)
    obj_lib._loaded.pop(oid, None)
    assert fresh.dir != ref.dir
    assert [f.read_bytes() for f in fresh.collision_files] == [f.read_bytes() for f in ref.collision_files]
    assert json.loads((fresh.dir / "meta.json").read_text())["extents"] == list(ref.extents)


def test_environments():
    assert len(env_lib.ENVIRONMENTS) >= 12
    with pytest.raises(KeyError, match="valid ids"):
        env_lib.get_environment("moon")


def test_every_environment_loads_in_sim():
    import gymnasium as gym

    import dexenvs  # noqa: F401

    e = gym.make("DexGrasp-v0", obs_mode="rgb")
    means = []
    for env_id in env_lib.ENVIRONMENTS:
        obs, info = e.reset(seed=0, options={"scenario": f"can_00|{env_id}|p0"})
        assert info["scenario"] == f"can_00|{env_id}|p0"
        means.append(obs["sensor_data"]["head"]["rgb"].reshape(-1, 3).mean(0))
    # lighting, table and background differ: the camera sees distinct images
    assert len({tuple(np.round(m, 0)) for m in means}) >= len(means) * 0.9


def test_user_mesh_loader(tmp_path):
    import trimesh

    trimesh.creation.capsule(height=0.06, radius=0.025).export(tmp_path / "capsule.stl")
    a = load_mesh_object(tmp_path / "capsule.stl", object_id="test_capsule", category="bottle", mass=0.2)
    assert a.id in obj_lib.OBJECTS and a.mass == 0.2 and len(a.collision_files) >= 1
    assert abs(a.extents[2] - 0.11) < 1e-3


@pytest.mark.parametrize(
    "name, content, exc, words",
    [
        ("missing.obj", None, FileNotFoundError, ["does not exist"]),
        ("notes.txt", "hello", ValueError, ["unsupported", ".obj"]),
        ("broken.obj", "v 0 0 0\nf 1 2 3\n", ValueError, ["could not read", "broken.obj"]),
        ("empty.stl", "", ValueError, ["empty.stl"]),
    ],
)
def test_broken_mesh_errors(tmp_path, name, content, exc, words):
    p = tmp_path / name
    if content is not None:
        p.write_text(content)
    with pytest.raises(exc) as ei:
        load_mesh_object(p)
    for w in words:
        assert w in str(ei.value)


def test_unknown_object_id():
    with pytest.raises(KeyError, match="valid ids"):
        obj_lib.get_object("unicorn_00")
