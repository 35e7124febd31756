"""Datasets: the recorder -> writer -> reader round trip, crash safety, clear errors, replay and seed demos."""

import json
import signal
import subprocess
import sys
import time

import gymnasium as gym
import h5py
import numpy as np
import pytest

import dexenvs  # noqa: F401
from agents.windows import DemoWindows
from dexenvs.cli import UsageError
from dexenvs.tasks import get_task
from dexenvs.trajectory import (DatasetError, DatasetWriter, Episode, Recorder, demo_names, env_args_of, make_env,
                                merge_datasets, open_dataset, read_episode)
from generators.replay import replay_by_action, replay_by_state
from generators.seed import record_expert_episode


def _synthetic(i: int, n: int = 12) -> Episode:
    rng = np.random.default_rng(i)
    return Episode(actions=rng.normal(size=(n, 15)).astype(np.float32),
                   obs=dict(agent_qpos=rng.normal(size=(n, 20)).astype(np.float32),
                            head_rgb=rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8)),
                   rewards=rng.normal(size=n).astype(np.float32), dones=np.zeros(n, bool), states=rng.normal(size=(n + 1, 9)),
                   datagen_info=dict(obj_pose=rng.normal(size=(n, 7)), phase=np.zeros((n, 1), np.int8)),
                   scenario=f"can_00|studio-wood-grey|p{i}", seed=i, success=True, phase_names=["approach"],
                   provenance=dict(generator="test"))


ENV_ARGS = dict(env_name="DexGrasp-v0", env_type="dexsuite", env_kwargs={})


@pytest.fixture(scope="module", params=["grasp", "handover"])
def recorded(request, tmp_path_factory):
    """A recorded expert episode of a one-hand and a two-hand task, written and consolidated."""
    task = request.param
    env = Recorder(gym.make(get_task(task).env_id).unwrapped)
    ep = record_expert_episode(env, task, 0, get_task(task).episode_options(0))
    path = tmp_path_factory.mktemp(task) / "seed.hdf5"
    with DatasetWriter(path, env_args_of(env)) as w:
        w.add(ep)
    return task, ep, path


def test_round_trip_keeps_every_field(recorded):
    task, ep, path = recorded
    assert ep.success and len(ep) > 20
    with open_dataset(path) as f:
        assert f["data"].attrs["total"] == len(ep)
        args = json.loads(f["data"].attrs["env_args"])
        assert args["env_name"] and args["control_mode"] == "pd_wrist_pose"
        assert [n.decode() for n in f["mask/train"][()]] == ["demo_0"]
        back = read_episode(f["data/demo_0"])
    for k in ("actions", "rewards", "states"):
        np.testing.assert_allclose(getattr(back, k), getattr(ep, k), rtol=1e-6, atol=1e-6)
    assert set(back.obs) == set(ep.obs) and set(back.datagen_info) == set(ep.datagen_info)
    for k in ep.obs:
        np.testing.assert_allclose(back.obs[k], ep.obs[k], rtol=1e-6)
    assert (back.scenario, back.seed, back.success, back.phase_names, back.reset_options) == \
        (ep.scenario, ep.seed, True, ep.phase_names, ep.reset_options)
    hands = 2 if task == "handover" else 1
    assert back.datagen_info["phase"].shape == (len(ep), hands)
    assert all(back.datagen_info[f"wrist_pose_{k}"].shape == (len(ep), 7) for k in range(hands))
    assert back.states.shape[0] == len(ep) + 1


def test_replay_by_state_and_action_reproduce_success(recorded):
    task, ep, path = recorded
    env = make_env(json.loads(open_dataset(path)["data"].attrs["env_args"]))
    ok, obs = replay_by_state(env, ep)
    assert ok == ep.success
    np.testing.assert_allclose(obs["extra_obj_pose"], ep.obs["extra_obj_pose"], atol=1e-5)  # exact, up to float32
    ok_a, err = replay_by_action(env, ep)
    assert ok_a == ep.success and err < 0.01


def test_windows_shapes_padding_and_normalization(tmp_path):
    path = tmp_path / "d.hdf5"
    with DatasetWriter(path, ENV_ARGS, valid_fraction=0.2) as w:
        for i in range(5):
            w.add(_synthetic(i))
    for cache in (True, False):
        ds = DemoWindows(path, obs_horizon=2, action_horizon=4, mask="train", cache=cache)
        assert len(ds) == 4 * 12  # one of five demos is in mask/valid
        item = ds[0]
        assert item["obs"]["agent_qpos"].shape == (2, 20) and item["obs"]["head_rgb"].shape == (2, 8, 8, 3)
        assert item["actions"].shape == (4, 15)
        np.testing.assert_array_equal(item["obs"]["agent_qpos"][0], item["obs"]["agent_qpos"][1])  # padded start
        last = ds[11]["actions"]
        np.testing.assert_array_equal(last[1], last[3])  # padded end
        assert -1.0 <= ds[5]["actions"].min() and ds[5]["actions"].max() <= 1.0
        assert 0.0 <= item["obs"]["head_rgb"].min() and item["obs"]["head_rgb"].max() <= 1.0
    assert len(DemoWindows(path, mask="valid")) == 12
    with pytest.raises(DatasetError, match="available"):
        DemoWindows(path, obs_keys=["nope"])


@pytest.mark.parametrize("normalize", [False, True])
def test_batched_windows_equal_windows_one_by_one(tmp_path, normalize):
    path = tmp_path / "d.hdf5"
    with DatasetWriter(path, ENV_ARGS, valid_fraction=0.2) as w:
        for i in range(5):
            w.add(_synthetic(i, n=7 + 3 * i))  # demos of different lengths: padding at both ends of each
    ds = DemoWindows(path, obs_horizon=3, action_horizon=5, mask="train", normalize=normalize)
    idx = np.random.default_rng(0).permutation(len(ds))
    batch = ds.batch(idx)
    for k in ds.obs_keys:
        np.testing.assert_array_equal(batch["obs"][k], np.stack([ds[i]["obs"][k] for i in idx]))
    np.testing.assert_array_equal(batch["actions"], np.stack([ds[i]["actions"] for i in idx]))
    with pytest.raises(ValueError, match="cache=True"):
        DemoWindows(path, cache=False).batch([0])


WRITER = """
import sys, numpy as np
sys.path.insert(0, {root!r})
from tests.test_datasets import _synthetic, ENV_ARGS
from dexenvs.trajectory import DatasetWriter
w = DatasetWriter({path!r}, ENV_ARGS, resume=True)
i = len(w)
while True:
    w.add(_synthetic(i, n=400)); i += 1
"""


def test_killed_writer_leaves_every_completed_episode_and_resume_continues(tmp_path):
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = tmp_path / "d.hdf5"
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(root=root, path=str(path))])
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.05)
        try:
            with h5py.File(path, "r") as f:
                if len(f["data"]) >= 3:
                    break
        except (OSError, KeyError):
            pass
    proc.send_signal(signal.SIGKILL)  # mid-way through some later episode
    proc.wait()
    with open_dataset(path) as f:
        names = demo_names(f)
        assert len(names) >= 3
        for n in names:  # every listed episode is complete and readable
            ep = read_episode(f["data"][n])
            assert len(ep) == 400 and ep.seed == int(n.split("_")[1])
    w = DatasetWriter(path, ENV_ARGS, resume=True)
    assert len(w) == len(names)
    w.add(_synthetic(len(names)))
    w.close()
    with open_dataset(path) as f:
        seeds = [int(f["data"][n].attrs["seed"]) for n in demo_names(f)]
    assert seeds == list(range(len(names) + 1))  # nothing lost, nothing twice
    assert not (tmp_path / "d.hdf5.episodes").exists()


def test_corrupt_and_foreign_files_raise_clear_errors(tmp_path):
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        open_dataset(bad)
    foreign = tmp_path / "foreign.hdf5"
    with h5py.File(foreign, "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(DatasetError, match="not a robomimic-layout dataset"):
        open_dataset(foreign)
    with pytest.raises(DatasetError, match="no dataset"):
        open_dataset(tmp_path / "missing.hdf5")
    path = tmp_path / "d.hdf5"
    DatasetWriter(path, ENV_ARGS).add(_synthetic(0))
    with pytest.raises(UsageError, match="resume"):
        DatasetWriter(path, ENV_ARGS)
    with pytest.raises(DatasetError, match="DexGrasp-v0"):
        DatasetWriter(path, dict(ENV_ARGS, env_name="DexPour-v0"), resume=True)


def test_merge_keeps_every_demo_in_order_and_refuses_unlike_envs(tmp_path):
    a, b, out = tmp_path / "a.hdf5", tmp_path / "b.hdf5", tmp_path / "ab.hdf5"
    for path, ids in ((a, (0, 1)), (b, (2, 3, 4))):
        with DatasetWriter(path, ENV_ARGS) as w:
            for i in ids:
                w.add(_synthetic(i))
    out.write_bytes(b"a merge cut short")  # redone from the start, not adopted
    merge_datasets([a, b], out)
    with open_dataset(out) as f:
        names = demo_names(f)
        assert len(names) == 5 and f["data"].attrs["total"] == 5 * 12
        for n, i in zip(names, range(5)):
            back = read_episode(f["data"][n])
            np.testing.assert_array_equal(back.actions, _synthetic(i).actions)
            assert back.scenario == f"can_00|studio-wood-grey|p{i}"
        assert [n.decode() for n in f["mask/train"][()]] == names  # 10% of 5 rounds to no validation demo
    assert not (tmp_path / "ab.hdf5.episodes").exists()
    c = tmp_path / "c.hdf5"
    with DatasetWriter(c, dict(ENV_ARGS, env_kwargs=dict(obs_mode="rgb"))) as w:
        w.add(_synthetic(5))
    with pytest.raises(DatasetError, match="different env_kwargs"):
        merge_datasets([a, c], tmp_path / "ac.hdf5")
