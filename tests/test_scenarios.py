"""The O x E x P scenario model and its splits."""

import gymnasium as gym
import numpy as np
import pytest

import dexenvs  # noqa: F401
from dexenvs.scenarios import N_TEST_OEP, Scenario, ScenarioSpace
from dexenvs.tasks.grasp import DexGraspEnv


@pytest.fixture(scope="module")
def space():
    return ScenarioSpace("grasp", DexGraspEnv.object_categories, DexGraspEnv.workspace)


def test_splits_disjoint(space):
    assert not set(space.train_objects) & set(space.test_objects)
    assert not set(space.train_envs) & set(space.test_envs)
    assert not set(space.train_poses) & set(space.test_poses)
    t_o, t_oep = space.scenarios("test_objects"), space.scenarios("test_oep")
    assert len(t_oep) == N_TEST_OEP == 40
    for s in t_oep:  # every factor unseen in train
        assert s.object_id in space.test_objects and s.env_id in space.test_envs and s.pose_id in space.test_poses
        assert not space.contains("train", s)
    for s in t_o:  # unseen object, fixed environment and pose
        assert s.object_id in space.test_objects and (s.env_id, s.pose_id) == (t_o[0].env_id, t_o[0].pose_id)
        assert not space.contains("train", s) and s not in t_oep
    rng = np.random.default_rng(0)
    for _ in range(200):
        s = space.sample("train", rng)
        assert space.contains("train", s) and s not in t_o and s not in t_oep
    # every category keeps training objects and contributes held-out ones
    assert {o.rsplit("_", 1)[0] for o in space.test_objects} == set(DexGraspEnv.object_categories)


def test_membership_is_deterministic(space):
    again = ScenarioSpace("grasp", DexGraspEnv.object_categories, DexGraspEnv.workspace)
    assert again.scenarios("test_oep") == space.scenarios("test_oep")
    assert again.train_objects == space.train_objects
    assert [again.pose(p) for p in range(5)] == [space.pose(p) for p in range(5)]
    other_task = ScenarioSpace("lift", DexGraspEnv.object_categories, DexGraspEnv.workspace)
    assert other_task.pose(0) != space.pose(0)


def test_pose_inside_workspace(space):
    w = DexGraspEnv.workspace
    for p in space.train_poses + space.test_poses:
        x, y, yaw = space.pose(p)
        assert w.x[0] <= x <= w.x[1] and w.y[0] <= y <= w.y[1] and -np.pi <= yaw <= np.pi


def test_around_grows_from_the_center(space):
    c = Scenario(space.train_objects[0], space.train_envs[5], 25)
    envs, poses = space.around(c, 3, 5)
    assert envs == space.train_envs[5:8] and poses[0] == 25 and len(poses) == 5 == len(set(poses))
    wider_e, wider_p = space.around(c, 8, 10)
    assert wider_e[:3] == envs and wider_p[:5] == poses  # each slice contains the narrower one
    x0, y0, _ = space.pose(25)
    near = lambda p: np.hypot(space.pose(p)[0] - x0, space.pose(p)[1] - y0)  # noqa: E731
    far = [p for p in space.train_poses if p not in wider_p]
    assert np.mean([near(p) for p in poses]) < np.mean([near(p) for p in far])
    all_e, all_p = space.around(c)
    assert sorted(all_e) == sorted(space.train_envs) and sorted(all_p) == space.train_poses
    # an environment outside the train split starts at the split's first
    assert space.around(Scenario(c.object_id, space.test_envs[0], 25), 2)[0] == space.train_envs[:2]
    with pytest.raises(ValueError, match="must be >= 0"):
        space.around(c, -1)


def test_env_reports_and_honours_scenarios():
    env = gym.make("DexGrasp-v0", split="test_oep")
    u = env.unwrapped
    seen = set()
    for seed in range(6):
        _, info = env.reset(seed=seed)
        s = Scenario.parse(info["scenario"])
        assert u.space.contains("test_oep", s)
        seen.add(s)
        x, y, _ = u.space.pose(s.pose_id)
        np.testing.assert_allclose(u.obj.pose.p[0, :2].numpy(), [x, y], atol=1e-4)
        assert u._assets[0].id == s.object_id
    assert len(seen) > 1
    _, info = env.reset(seed=0, options={"scenario": "mug_00|cool-dark-grey|p3"})
    assert info["scenario"] == "mug_00|cool-dark-grey|p3"
    _, info = env.reset(seed=0, options={"scenario": {"object_id": "can_01", "env_id": "dim-white-grey", "pose_id": 7}})
    assert info["scenario"] == "can_01|dim-white-grey|p7"


def test_scenario_parse_errors():
    with pytest.raises(ValueError, match="expected"):
        Scenario.parse("can_00-studio")
    with pytest.raises(ValueError, match="missing"):
        Scenario.parse({"object_id": "can_00"})
