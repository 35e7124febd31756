"""Grasp sets: the net-force test, refusing objects the hand cannot hold, a small set that
builds, whose kept grasps hold again when re-simulated, and a build that resumes without duplicates."""

import numpy as np
import pytest
import torch

from dexenvs.cli import UsageError
from dexenvs.grasps import GraspSet, pose_distance
from generators.grasps.build import GraspConfig, _candidates, build_grasp_set, check_object
from generators.grasps.hand import hand_model
from generators.grasps.sampling import force_closure_residual
from generators.grasps.validate import Validator, squeeze_targets


def test_net_force_test_accepts_opposed_contacts_only():
    n = np.array([[[1, 0, 0], [-1, 0, 0], [0, 0, 0]], [[1, 0, 0], [0.9, 0.1, 0], [0, 0, 0]],
                  [[1, 0, 0], [-0.5, 0.866, 0], [-0.5, -0.866, 0]]], dtype=float)
    mask = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 1]], bool)
    r = force_closure_residual(n, mask)
    assert r[0] < 1e-6 and r[2] < 1e-6 and r[1] > 0.5


def test_objects_the_hand_cannot_hold_are_refused_by_name():
    with pytest.raises(UsageError, match="--object box_00: .* too large for the hand"):
        check_object("box_00")
    with pytest.raises(UsageError, match="--object nope: unknown object; in-hand sized: .*cube_00"):
        check_object("nope")


def test_a_broken_mesh_is_refused_by_name(tmp_path):
    import trimesh

    from assets.objects import load_mesh_object

    box = trimesh.creation.box((0.05, 0.05, 0.05))
    keep = np.ones(len(box.faces), bool)
    keep[:2] = False  # one face open
    trimesh.Trimesh(box.vertices, box.faces[keep]).export(tmp_path / "open_box.obj")
    load_mesh_object(tmp_path / "open_box.obj", object_id="open_box_test", category="cube", mass=0.1)
    with pytest.raises(UsageError, match="--object open_box_test: its mesh is not watertight"):
        check_object("open_box_test")
    (tmp_path / "junk.obj").write_text("not a mesh\n")
    with pytest.raises(ValueError, match="has no triangles"):
        load_mesh_object(tmp_path / "junk.obj", object_id="junk_test")


def test_small_set_builds_holds_when_resimulated_and_resumes_without_duplicates(tmp_path):
    cfg = GraspConfig("cube_00", num=3, out=tmp_path, seeds=8, round_size=16, workers=1)
    rep = build_grasp_set(cfg, progress=False)
    final, parts, report = cfg.paths()
    gs = GraspSet.load(final)
    assert rep["grasps"] == len(gs) == 3 and report.exists() and gs.meta["object"] == "cube_00"
    assert (gs.penetration < 0.001).all() and (gs.hold_move < 0.01).all() and (gs.hold_turn < 0.1).all()
    assert gs.knn.shape == (3, 2) and (np.diff(gs.knn_dist, axis=1) >= 0).all()
    d = pose_distance(gs.obj_pos[0], gs.obj_quat[0], gs.obj_pos[gs.knn[0, 0]], gs.obj_quat[gs.knn[0, 0]])
    assert np.isclose(d, gs.knn_dist[0, 0], atol=1e-3)
    # every kept grasp holds again in a fresh simulation, driven by the targets the set stores (its squeeze)
    hand = hand_model("allegro_hand_right")
    c = _candidates(gs.arrays)
    np.testing.assert_allclose(gs.target, squeeze_targets(hand, c, cfg.squeeze).numpy(), atol=1e-5)
    assert np.abs(gs.target - gs.q).max() > 1e-3
    res = Validator("allegro_hand_right", "cube_00", batch=len(gs)).run(c, torch.as_tensor(gs.target))
    assert (res["hold_move"] < 0.01).all() and (res["hold_turn"] < 0.1).all()
    # a build interrupted after these rounds (its final file gone) continues from them
    rounds = sorted(p.name for p in parts.glob("round_*.npz"))
    final.unlink()
    more = GraspConfig("cube_00", num=6, out=tmp_path, seeds=8, round_size=16, workers=1)
    build_grasp_set(more, progress=False)
    after = sorted(p.name for p in parts.glob("round_*.npz"))
    assert after[: len(rounds)] == rounds and len(after) >= len(rounds)
    gs2 = GraspSet.load(final)
    assert len(gs2) == 6 and len(np.unique(gs2.q.round(6), axis=0)) == 6
