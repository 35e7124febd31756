"""Human hand data in the EgoDex layout: the reader returns the 48-D action the transforms define (checked against an
independent numpy computation), masks follow the confidences with the wrist rule, files out of the layout are refused
with a line naming what is wrong, windows have EgoDex's relative-frame convention, and the simulation stand-in writes
episodes the reader reads, with capture drop-outs, and resumes without rewriting."""

from __future__ import annotations

import h5py
import imageio.v2 as iio
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dexenvs.cli import DexError, run_cli
from generators.human import layout
from generators.human.reader import HORIZON_1S, HORIZON_2S, EgoDexEpisode, episodes, windows

SIDES = ("left", "right")
TIPS = ("Thumb", "IndexFinger", "MiddleFinger", "RingFinger", "LittleFinger")


def random_poses(rng: np.random.Generator, n: int, scale: float = 0.5) -> np.ndarray:
    out = np.tile(np.eye(4), (n, 1, 1))
    out[:, :3, :3] = Rotation.random(n, random_state=int(rng.integers(1 << 30))).as_matrix()
    out[:, :3, 3] = rng.uniform(-scale, scale, (n, 3))
    return out


def write_episode(path, n: int = 20, seed: int = 0, transforms: dict | None = None, conf: dict | None = None):
    """A synthetic episode in the layout: random poses for every joint and the camera unless given."""
    rng = np.random.default_rng(seed)
    transforms = dict(transforms or {})
    conf = dict(conf or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for j in ("camera",) + layout.JOINTS:
            f[f"transforms/{j}"] = transforms.get(j, random_poses(rng, n))
        for j in layout.JOINTS:
            f[f"confidences/{j}"] = conf.get(j, np.ones(n))
        f["camera/intrinsic"] = layout.DEFAULT_INTRINSIC
        f.attrs["llm_description"] = "put the cup on the plate"
        f.attrs["task"] = "test_task"
    return path


def expected_action(cam: np.ndarray, world: dict, t_cam: int, t: int) -> np.ndarray:
    """The 48-D action of step t in the camera frame of step t_cam, written out entry by entry."""
    inv = np.linalg.inv(cam[t_cam])
    out = []
    for side in SIDES:
        w = inv @ world[f"{side}Hand"][t]
        out += list(w[:3, 3]) + list(w[:3, 0]) + list(w[:3, 1])
        for tip in TIPS:
            out += list((inv @ world[f"{side}{tip}Tip"][t])[:3, 3])
    return np.array(out)


def test_round_trip_actions_keypoints_masks(tmp_path):
    n = 20
    rng = np.random.default_rng(1)
    world = {j: random_poses(rng, n) for j in ("camera",) + layout.JOINTS}
    conf = {j: rng.uniform(0, 1, n) for j in layout.JOINTS}
    conf["rightHand"][5:9] = 0.0  # the right hand undetected: its confident tips must not count
    conf["rightIndexFingerTip"][5:9] = 1.0
    ep = EgoDexEpisode(write_episode(tmp_path / "t" / "0.hdf5", n, transforms=world, conf=conf))
    assert len(ep) == n and ep.fps == 30 and ep.language == "put the cup on the plate" and ep.task == "test_task"

    actions = ep.actions()
    assert actions.shape == (n, 48) and actions.dtype == np.float32
    want = np.stack([expected_action(world["camera"], world, t, t) for t in range(n)])
    np.testing.assert_allclose(actions, want, atol=2e-5)

    kp = ep.keypoints()
    assert kp.shape == (n, 12, 3)
    np.testing.assert_allclose(kp[:, 6], want[:, 24:27], atol=2e-5)  # right wrist
    np.testing.assert_allclose(kp[:, 11], want[:, 45:48], atol=2e-5)  # right little fingertip

    masks = ep.masks(0.5)
    assert masks.shape == (n, 12) and masks.dtype == bool
    for h, side in enumerate(SIDES):
        wrist = conf[f"{side}Hand"] > 0.5
        np.testing.assert_array_equal(masks[:, 6 * h], wrist)
        for k, tip in enumerate(TIPS):
            np.testing.assert_array_equal(masks[:, 6 * h + 1 + k], wrist & (conf[f"{side}{tip}Tip"] > 0.5))
    assert not masks[5:9, 6:].any()


def _drop(name):
    def edit(f):
        del f[name]
    return edit


def _replace(name, data):
    def edit(f):
        del f[name]
        f[name] = data
    return edit


@pytest.mark.parametrize("edit, says", [
    (_drop("transforms/leftIndexFingerTip"), ["missing transforms", "leftIndexFingerTip"]),
    (_drop("transforms/camera"), ["missing transforms/camera"]),
    (_replace("transforms/rightHand", np.zeros((20, 3, 4))), ["transforms/rightHand is (20, 3, 4)", "(N, 4, 4)"]),
    (_replace("confidences/leftHand", np.ones(7)), ["confidences not (20,)", "leftHand (7,)"]),
    (_drop("camera/intrinsic"), ["no camera/intrinsic"]),
    (_drop("confidences/rightThumbTip"), ["missing confidences", "rightThumbTip"]),
])
def test_bad_files_name_what_is_wrong(tmp_path, edit, says):
    path = write_episode(tmp_path / "t" / "0.hdf5")
    with h5py.File(path, "a") as f:
        edit(f)
    with pytest.raises(DexError) as err:
        EgoDexEpisode(path)
    line = str(err.value)
    assert "\n" not in line and str(path) in line
    for s in says:
        assert s in line


def test_not_hdf5_and_missing_file(tmp_path):
    junk = tmp_path / "t" / "0.hdf5"
    junk.parent.mkdir()
    junk.write_bytes(b"not hdf5")
    with pytest.raises(DexError, match="not an HDF5 file"):
        EgoDexEpisode(junk)
    with pytest.raises(DexError, match="no such episode file"):
        EgoDexEpisode(tmp_path / "t" / "1.hdf5")


def test_windows_shapes_and_relative_frame(tmp_path):
    n = 100
    rng = np.random.default_rng(2)
    cam = random_poses(rng, n, 0.2)  # the head moves every step
    world = {j: np.repeat(random_poses(rng, 1), n, 0) for j in layout.JOINTS}  # the hands hold still in the world
    ep = EgoDexEpisode(write_episode(tmp_path / "t" / "0.hdf5", n, transforms=world | {"camera": cam}))
    for horizon in (HORIZON_1S, HORIZON_2S):
        ws = list(windows(ep, history=4, horizon=horizon, stride=5))
        assert [w.t for w in ws] == list(range(3, n - horizon, 5))
        w = ws[-1]
        assert w.history.shape == (4, 48) and w.future.shape == (horizon, 48)
        assert w.history_mask.shape == (4, 12) and w.future_mask.shape == (horizon, 12)
    w = next(windows(ep, history=2, horizon=HORIZON_1S, stride=1))
    # every future step is in the current step's camera frame: a hand still in the world stays still in the chunk
    for k in (0, 10, HORIZON_1S - 1):
        np.testing.assert_allclose(w.future[k], expected_action(cam, world, w.t, w.t + 1 + k), atol=2e-5)
    np.testing.assert_allclose(w.future, np.repeat(w.future[:1], HORIZON_1S, 0), atol=2e-5)
    assert not np.allclose(ep.actions()[w.t + 1], ep.actions()[w.t + 10], atol=1e-3)  # per-step frames move
    np.testing.assert_allclose(w.history[-1], ep.actions()[w.t], atol=2e-5)  # the current step ends the history


def test_frames_episode_listing_and_missing_video(tmp_path):
    path = write_episode(tmp_path / "a" / "0.hdf5", n=8)
    ep = EgoDexEpisode(path)
    with pytest.raises(DexError, match="no video"):
        ep.frame(0)
    colors = [np.full((32, 48, 3), 30 * i, np.uint8) for i in range(8)]
    iio.mimsave(path.with_suffix(".mp4"), colors, fps=30, macro_block_size=2)
    frames = ep.frames([1, 6])
    assert frames.shape == (2, 32, 48, 3) and frames.dtype == np.uint8
    assert abs(float(frames[1].mean()) - 180) < 12 and abs(float(ep.frame(2).mean()) - 60) < 12
    for name in ("a/10.hdf5", "a/2.hdf5", "b/1.hdf5"):
        write_episode(tmp_path / name, n=3)
    (tmp_path / "a" / ".3.tmp99.hdf5").write_bytes(b"")  # a killed write's leftover
    assert [p.relative_to(tmp_path).as_posix() for p in episodes(tmp_path)] == \
        ["a/0.hdf5", "a/2.hdf5", "a/10.hdf5", "b/1.hdf5"]


def test_standin_generates_readable_episodes_and_resumes(tmp_path):
    from dexenvs.experts.grasp import SEGMENTS
    from generators.human.standin import Args, main

    argv = ["--task", "grasp", "--episodes", "2", "--out", str(tmp_path), "--workers", "1", "--no-video"]
    assert len(run_cli(main, Args, argv=argv)) == 2
    paths = episodes(tmp_path)
    assert [p.name for p in paths] == ["0.hdf5", "1.hdf5"]
    sim_samples = sum(SEGMENTS.values()) + 1  # the reset state, then one per control step
    drops = 0
    for p in paths:
        ep = EgoDexEpisode(p)
        assert abs(len(ep) - 1.5 * sim_samples) <= 2
        assert np.isfinite(ep.actions()).all() and np.isfinite(ep.keypoints()).all()
        masks = ep.masks()
        assert not masks[:, :6].any()  # grasp uses the right hand; the left rests, undetected
        assert masks[:, 6].mean() > 0.5
        drops += int((~masks[:, 7:]).sum())
        with h5py.File(p) as f:
            assert "stand-in" in f.attrs["source"] and f.attrs["task"] == "grasp"
            assert all(0 <= f[f"confidences/{j}"][()].min() and f[f"confidences/{j}"][()].max() <= 1
                       for j in layout.JOINTS)
        assert not p.with_suffix(".mp4").exists()
    assert drops > 0  # occlusions at the default noise
    before = {p: p.stat().st_mtime_ns for p in paths}
    assert run_cli(main, Args, argv=argv) == []
    assert {p: p.stat().st_mtime_ns for p in episodes(tmp_path)} == before
