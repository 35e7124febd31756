"""DexWild co-training: the embodiment-agnostic representation gives back the robot's own actions, human stand-in
episodes retarget into a dataset of the same keys, a co-training batch holds its ratio with each embodiment in its own
normalization, and a co-trained policy acts in the env through the usual interface."""

import h5py
import numpy as np
import pytest
import torch

from agents import train
from agents.embodiment import FEATURES, RAW_KEYS, REPRESENTATION, RelativeFrontend, robot_episode
from agents.windows import DemoWindows
from dexenvs.cli import DexError, UsageError
from generators import seed


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from generators.human.standin import StandinConfig, generate
    from generators.human.to_robot import convert

    root = tmp_path_factory.mktemp("cotrain")
    robot = seed.main(seed.Args(task="grasp", out=root / "seed.hdf5"))
    generate(StandinConfig("grasp", 2, root / "human", workers=1), progress=False)
    human = convert(root / "human", "grasp", robot, root / "human.hdf5", scale=1 / 1.1, progress=False)
    return root, robot, human


def test_the_representation_chains_back_to_the_robots_actions(data):
    _, robot, _ = data
    with h5py.File(robot) as f:
        g = f["data/demo_0"]
        obs, actions = {k: g["obs"][k][()] for k in RAW_KEYS}, g["actions"][()]
    feats, rel = robot_episode(obs, actions)
    assert {k: v.shape[1] for k, v in feats.items()} == FEATURES and rel.shape == actions.shape
    assert np.allclose(feats["wrist_delta"][0], [0, 0, 0, 1, 0, 0, 0, 1, 0], atol=1e-6)  # no motion before step 0
    front = RelativeFrontend()
    for t in range(len(actions)):
        f = front.observe({k: torch.as_tensor(obs[k][t : t + 1]) for k in RAW_KEYS})
        for k in FEATURES:
            assert np.allclose(f[k][0].numpy(), feats[k][t], atol=1e-4), (k, t)
        assert np.allclose(front.command(torch.as_tensor(rel[t : t + 1]))[0].numpy(), actions[t], atol=1e-4), t
    front.reset([0])  # an env reset: the chain starts again from the wrist it sees
    f = front.observe({k: torch.as_tensor(obs[k][5:6]) for k in RAW_KEYS})
    assert np.allclose(f["wrist_delta"][0].numpy(), [0, 0, 0, 1, 0, 0, 0, 1, 0], atol=1e-6)


def test_human_episodes_retarget_into_the_same_keys(data):
    _, robot, human = data
    with h5py.File(human) as f:
        import json

        args = json.loads(f["data"].attrs["env_args"])
        assert args["representation"] == REPRESENTATION and args["embodiment"] == "human"
        assert args["env_name"] == "DexGrasp-v0" and args["robot"] == ["floating_inspire_hand_right"]
        names = list(f["data"])
        assert len(names) == 2
        g = f["data"][names[0]]
        assert {k: g["obs"][k].shape[1] for k in g["obs"]} == FEATURES
        a = g["actions"][()]
        assert a.shape[1] == 15 and np.isfinite(a).all()
        assert (a[:, 9:] <= 1e-6).all() and (a[:, 9:] >= -1.35).all()  # the Inspire hand's finger limits
        rot = g["obs"]["obj_in_wrist"][()][:, 3:9]
        assert np.allclose(np.linalg.norm(rot[:, :3], axis=1), 1, atol=1e-3)


def test_a_cotraining_batch_holds_its_ratio_in_each_embodiments_normalization(data, tmp_path):
    _, robot, human = data
    from agents.embodiment import relative_dataset

    rel = relative_dataset(robot, tmp_path / "robot_rel.hdf5")
    keys = sorted(FEATURES)
    r = DemoWindows(rel, keys, 2, 16, mask=None, normalize=False)
    h = DemoWindows(human, keys, 2, 16, mask=None, normalize=False)
    for ratio, n_human in ((2.0, 20), (1.0, 15), (5.0, 25), (0.0, 0)):
        b = next(train.mixed_batches(r, h, 30, ratio, torch.Generator().manual_seed(0)))
        assert b["actions"].shape[0] == 30 and int(b["human"].sum()) == n_human
        assert not b["human"][: 30 - n_human].any()
        if n_human:  # human rows lie in the robot's range: human min/max map onto the robot's
            lo, hi = (torch.as_tensor(r.stats["actions"][k], dtype=torch.float32) for k in ("min", "max"))
            ha = b["actions"][b["human"]]
            assert (ha >= lo - 1e-4).all() and (ha <= hi + 1e-4).all()


def test_a_cotrained_policy_acts_in_the_env(data, tmp_path):
    import gymnasium as gym

    import dexenvs  # noqa: F401
    from agents.checkpoint import load_policy, read_checkpoint

    _, robot, human = data
    out = tmp_path / "run"
    train.main(train.Args(dataset=robot, human=human, human_ratio=2, out=out, steps=10, down_dims=(16, 32),
                          batch_size=32, warmup_steps=2, eval_every=0, progress=False))
    cfg = read_checkpoint(out / "checkpoint.pt")["config"]
    assert cfg["representation"] == REPRESENTATION and cfg["cotrain"]["human_ratio"] == 2
    assert sorted(cfg["low_dim"]) == sorted(FEATURES)
    policy = load_policy(out / "checkpoint.pt")
    env = gym.make("DexGrasp-v0", obs_mode="state_dict")
    obs, _ = env.reset(seed=0)
    policy.reset(seed=0)
    for _ in range(3):
        a = policy.act(obs)
        assert a.shape == (15,) and np.isfinite(a).all()  # the single-env API: numpy in, numpy out
        obs, *_ = env.step(a)
    env.close()


def test_bad_human_data_is_refused_by_name(data, tmp_path):
    root, robot, _ = data
    with pytest.raises(UsageError, match="generators.human.to_robot"):
        train.check_human(robot, robot)  # a robot dataset is not a retargeted human one
    bare = tmp_path / "bare" / "grasp"
    bare.mkdir(parents=True)
    src = root / "human" / "grasp" / "0.hdf5"
    with h5py.File(src) as f, h5py.File(bare / "0.hdf5", "w") as g:
        for k in f:
            if k != "transforms":
                f.copy(f[k], g, name=k)
        for j in f["transforms"]:
            if j != "object":
                g.create_dataset(f"transforms/{j}", data=f["transforms"][j][()])
        g.attrs.update(dict(f.attrs))
    from generators.human.to_robot import convert

    with pytest.raises(DexError, match="no object poses"):
        convert(tmp_path / "bare", "grasp", robot, tmp_path / "h.hdf5", progress=False)
