"""DexRegrasp-v0 (in-hand regrasp on the Allegro hand), its planner expert and the transition data."""

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch

import dexenvs  # noqa: F401
from dexenvs.experts import rollout
from dexenvs.experts.regrasp import RegraspPlanner, load_edges
from dexenvs.grasps import POS_TOL, ROT_TOL
from dexenvs.tasks.regrasp import GRASP_DIR, DexRegraspEnv, quat_angle

SC = "cube_00|studio-white-blue|p5"


@pytest.fixture(scope="module")
def env():
    e = gym.make("DexRegrasp-v0", scenario=SC)
    yield e
    e.close()


def test_defaults_and_checkers():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check

    e = gym.make("DexRegrasp-v0")  # every object of the train split has its grasp set shipped
    check_env(e, skip_render_check=True)
    sb3_check(e)
    obs, info = e.reset(seed=0)
    assert e.action_space.shape == (16,) and obs.dtype == np.float32
    assert {"success", "fail", "consecutive_successes", "pos_err", "rot_err", "scenario"} <= set(info)
    extra = e.unwrapped.get_obs(unflattened=True)["extra"]
    assert extra["keypoints"].shape == (1, 24)  # fingertips and middle joints of 4 fingers, hand frame
    assert extra["goal_rel"].shape == (1, 7) and extra["gravity"].shape == (1, 3)
    e.close()


def test_every_split_object_has_a_grasp_set():
    space = DexRegraspEnv.scenario_space()
    for o in space.train_objects + space.test_objects:
        assert (GRASP_DIR / f"allegro_hand_right-{o}.npz").exists(), o


def test_reset_lands_in_the_set_grasp_without_penetration(env):
    u = env.unwrapped
    for seed, pose in ((0, 3), (1, 10017)):
        env.reset(seed=seed, options=dict(scenario=f"cube_00|studio-white-blue|p{pose}"))
        gs = u.grasp_set("cube_00")
        g = int(u.start_grasp[0])
        s = u.snapshot()
        assert float((s["obj_pos_hand"][0] - gs.pos[g]).norm()) < 1e-4
        assert float(quat_angle(s["obj_quat_hand"][0], gs.quat[g])) < 1e-3
        np.testing.assert_allclose(u.agent.controller.qpos[0].numpy(), gs.q[g].numpy(), atol=1e-4)
        # the validated squeeze targets drive the hand from the first step, and the grasp holds
        np.testing.assert_allclose(u.agent.controller._target_qpos[0].numpy(), gs.target[g].numpy(), atol=1e-6)
        env.step(np.zeros(16, np.float32))
        depth = [min(0.0, min(p.separation for p in c.points)) for c in u.scene.get_contacts() if c.points]
        assert min(depth, default=0.0) > -0.001
        for _ in range(10):
            _, _, _, _, info = env.step(np.zeros(16, np.float32))
        assert not info["fail"] and float((u.snapshot()["obj_pos_hand"][0] - gs.pos[g]).norm()) < POS_TOL


def test_wrist_orientation_is_part_of_the_scenario(env):
    u = env.unwrapped
    gravity = []
    for pose in (0, 7, 23):
        env.reset(seed=0, options=dict(scenario=f"cube_00|studio-white-blue|p{pose}"))
        gravity.append(u.get_obs(unflattened=True)["extra"]["gravity"][0].numpy())
    assert min(np.linalg.norm(a - b) for i, a in enumerate(gravity) for b in gravity[i + 1:]) > 0.1


def test_reaching_the_goal_counts_and_draws_a_new_one(env):
    u = env.unwrapped
    env.reset(seed=3, options=dict(scenario=SC))
    gs = u.grasp_set("cube_00")
    goal = int(u.goal_grasp[0])
    # put the hand and object in the goal grasp (state), then step: the goal is reached
    from mani_skill.utils.structs.pose import Pose

    u.agent.robot.set_qpos(gs.q[goal][u._qpos_order].unsqueeze(0))
    u.agent.controller._target_qpos[0] = gs.target[goal]
    u.agent.controller.set_drive_targets(u.agent.controller._target_qpos)
    from mani_skill.utils.geometry.rotation_conversions import matrix_to_quaternion, quaternion_multiply

    hq = matrix_to_quaternion(u._hand_rot)
    p = u._hand_pos + (u._hand_rot @ gs.pos[goal].view(1, 3, 1)).squeeze(-1)
    u.obj.set_pose(Pose.create_from_pq(p, quaternion_multiply(hq, gs.quat[goal].unsqueeze(0))))
    _, reward, terminated, _, info = env.step(np.zeros(16, np.float32))
    assert info["goal_reached"] and info["consecutive_successes"] == 1 and not info["success"]
    assert int(u.goal_grasp[0]) != goal and not terminated
    lo, hi = u.goal_range
    d = gs.set.knn_dist[goal][gs.set.knn[goal] == u.goal_grasp[0]]
    assert len(d) == 1 and (lo <= d[0] <= hi or d[0] == gs.set.knn_dist[goal][gs.set.knn_dist[goal] >= lo][0])
    assert reward > 1.0  # one goal's point on top of the distance term


def test_a_dropped_object_fails(env):
    from mani_skill.utils.structs.pose import Pose

    u = env.unwrapped
    env.reset(seed=0, options=dict(scenario=SC))
    u.obj.set_pose(Pose.create_from_pq(torch.tensor([[0.0, 0.0, 0.05]]), torch.tensor([[1.0, 0, 0, 0]])))
    _, reward, terminated, _, info = env.step(np.zeros(16, np.float32))
    assert info["fail"] and terminated and reward == 0.0


def test_same_seed_same_episode(env):
    actions = [np.random.default_rng(i).uniform(-1, 1, 16).astype(np.float32) for i in range(4)]
    runs = []
    for _ in range(2):
        obs, info = env.reset(seed=11, options=dict(scenario=SC))
        runs.append(np.stack([obs] + [env.step(a)[0] for a in actions]))
        runs[-1] = (runs[-1], int(env.unwrapped.goal_grasp[0]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


@pytest.mark.parametrize("kwargs, words", [
    (dict(goals_per_episode=0), "goals_per_episode must be >= 1"),
    (dict(goal_range=(3.0, 1.0)), "goal_range must be"),
    (dict(grasp_dir="/nonexistent"), "no grasp set for 'cube_00'.*python -m generators.grasps --object cube_00"),
])
def test_bad_input(kwargs, words):
    with pytest.raises((ValueError, FileNotFoundError), match=words):
        gym.make("DexRegrasp-v0", scenario=SC, **kwargs)


def test_bad_start_grasp(env):
    with pytest.raises(ValueError, match="start_grasp 9999 is not in cube_00's grasp set"):
        env.reset(options=dict(scenario=SC, start_grasp=9999))


def test_planner_reaches_nearby_goals_on_train_scenarios():
    e = gym.make("DexRegrasp-v0", control_mode="pd_joint_pos", goals_per_episode=1, scenario=SC).unwrapped
    planner = RegraspPlanner(e)
    space = DexRegraspEnv.scenario_space()
    rng = np.random.default_rng(0)
    wins = 0
    for ep in range(10):
        sc = space.sample("train", rng)
        out = rollout(e, planner, seed=ep, options=dict(scenario=str(sc)))
        wins += bool(out["success"][0])
    e.close()
    assert wins >= 3  # the planner's measured bar on train scenarios is in docs/results.md


def test_planner_refuses_a_policy_control_mode(env):
    with pytest.raises(ValueError, match="control_mode 'pd_joint_pos' or 'pd_joint_target_delta_pos'"):
        RegraspPlanner(gym.make("DexRegrasp-v0", scenario=SC, control_mode="pd_joint_delta_pos"))


def test_transitions_write_a_dataset_and_executed_edges_and_resume(tmp_path):
    from generators.transitions import TransitionConfig, build_transitions

    cfg = TransitionConfig(objects=("cube_00",), per_object=4, out=tmp_path, workers=1)
    rep = build_transitions(cfg, progress=False)
    assert rep["edges"] == 4
    with h5py.File(cfg.dataset(), "r") as f:
        demos = sorted(f["data"].keys())
        assert len(demos) == 4
        d = f["data"][demos[0]]
        assert d["actions"].shape[1] == 16 and d["obs/extra_keypoints"].shape[1] == 24
        assert {"obj_pose", "goal_pose"} <= set(d["datagen_info"].keys())
        executed = sum(bool(f["data"][n].attrs["success"]) for n in demos)
    edges = load_edges(tmp_path / "allegro_hand_right-cube_00.edges.npz")
    assert len(edges["src"]) == 4 and int(edges["ok"].sum()) == executed == rep["executed"]
    # a second run with more edges per object keeps the first four and adds the rest
    more = TransitionConfig(objects=("cube_00",), per_object=6, out=tmp_path, workers=1)
    rep2 = build_transitions(more, resume=True, progress=False)
    assert rep2["edges"] == 6
