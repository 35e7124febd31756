"""The tasks through the APIs users reach for: gymnasium, stable-baselines3, and ManiSkill's batched torch."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import dexenvs  # noqa: F401


TASKS = {"DexGrasp-v0": 1, "DexPour-v0": 1, "DexLift-v0": 2, "DexHandover-v0": 2}  # env id -> hands


@pytest.fixture(scope="module", params=list(TASKS))
def env(request):
    e = gym.make(request.param)
    yield e
    e.close()


def test_check_env_state_mode(env):
    from gymnasium.utils.env_checker import check_env

    check_env(env, skip_render_check=True)


def test_sb3_check_env_and_learn():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env

    e = gym.make("DexGrasp-v0")
    check_env(e)
    model = PPO("MlpPolicy", e, n_steps=64, batch_size=32, n_epochs=1, verbose=0, seed=0)
    model.learn(total_timesteps=128)
    action, _ = model.predict(e.reset(seed=0)[0], deterministic=True)
    assert e.action_space.contains(action.astype(np.float32))


def test_shapes_and_dtypes(env):
    hands = TASKS[env.spec.id]
    obs, info = env.reset(seed=0)
    assert isinstance(obs, np.ndarray) and obs.dtype == np.float32 and obs.ndim == 1
    assert obs.shape == env.observation_space.shape
    assert env.action_space.shape == (15 * hands,) and env.action_space.dtype == np.float32
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert np.isscalar(reward) or np.ndim(reward) == 0
    assert isinstance(terminated, (bool, np.bool_)) and isinstance(truncated, (bool, np.bool_))
    assert {"success", "fail", "scenario"} <= set(info)
    extra = env.unwrapped.get_obs(unflattened=True)["extra"]
    for sfx in ([""] if hands == 1 else ["_0", "_1"]):
        assert extra["wrist_pose" + sfx].shape == (1, 7) and extra["fingertip_pos" + sfx].shape == (1, 15)
    assert extra["obj_pose"].shape == (1, 7) and extra["obj_vel"].shape == (1, 6) and extra["goal_pos"].shape == (1, 3)
    size = np.asarray(env.unwrapped._assets[0].extents)
    np.testing.assert_allclose(extra["obj_extents"].cpu().numpy()[0], size, rtol=1e-6)  # the object's own size


def test_same_seed_same_episode(env):
    actions = [env.action_space.sample() for _ in range(5)]
    runs = []
    for _ in range(2):
        obs, info = env.reset(seed=123)
        traj = [obs]
        for a in actions:
            traj.append(env.step(a)[0])
        runs.append((info["scenario"], np.stack(traj)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    obs_other, info_other = env.reset(seed=124)
    assert info_other["scenario"] != runs[0][0] or not np.array_equal(obs_other, runs[0][1][0])


def test_time_limit_and_batched_interface(env):
    assert env.spec.max_episode_steps == type(env.unwrapped).max_episode_steps
    u = env.unwrapped
    obs, info = u.reset(seed=0)
    assert isinstance(obs, torch.Tensor) and obs.shape[0] == 1  # ManiSkill's batched torch API underneath
    assert info["success"].shape == (1,)


@pytest.mark.parametrize("env_id", list(TASKS))
def test_rgb_observation_renders(env_id):
    e = gym.make(env_id, obs_mode="rgb")
    obs, _ = e.reset(seed=0)
    rgb = obs["sensor_data"]["head"]["rgb"]
    assert rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8
    assert rgb.std() > 10, "head camera image is blank"
    # the object and hand are visible: the image changes when the hand moves
    a = e.action_space.sample()
    a[:3] = [0.0, 0.0, 0.15]
    for _ in range(5):
        obs2 = e.step(a)[0]
    assert np.abs(obs2["sensor_data"]["head"]["rgb"].astype(int) - rgb.astype(int)).mean() > 0.5
    e.close()


@pytest.mark.parametrize("env_id", ["DexGrasp-v0", "DexPour-v0"])
def test_arm_embodiment_steps(env_id):
    e = gym.make(env_id, robot_uids="xarm7_ability")
    obs, _ = e.reset(seed=0)
    for _ in range(20):
        obs, r, *_ = e.step(e.action_space.sample())
    assert np.isfinite(obs).all() and np.isfinite(r)
    e.close()


@pytest.mark.parametrize("robots, words", [
    (("xarm7_ability", "xarm7_ability"), ["two-hand", "floating"]),
    (("floating_inspire_hand_right", "floating_inspire_hand_right"), ["one left and one right"]),
])
def test_two_hand_tasks_reject_unpaired_hands(robots, words):
    for env_id in ("DexLift-v0", "DexHandover-v0"):
        with pytest.raises(ValueError) as ei:
            gym.make(env_id, robot_uids=robots)
        assert all(w in str(ei.value) for w in words)


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(not_a_kwarg=1), TypeError, ["not_a_kwarg", "valid"]),
        (dict(split="validation"), ValueError, ["validation", "test_oep"]),
        (dict(robot_uids="shadow_hand"), ValueError, ["shadow_hand", "floating_inspire_hand_right"]),
        (dict(scenario="no_such_obj|studio-wood-grey|p0"), ValueError, ["no_such_obj", "can_00"]),
        (dict(scenario="can_00|moonlight|p0"), ValueError, ["moonlight", "studio-wood-grey"]),
        (dict(scenario="can_00|studio-wood-grey|p999"), ValueError, ["999", "valid"]),
        (dict(obs_mode="lidar"), Exception, ["lidar"]),
    ],
)
def test_bad_constructor_input(kwargs, exc, words):
    with pytest.raises(exc) as ei:
        gym.make("DexGrasp-v0", **kwargs).reset(seed=0)
    for w in words:
        assert w in str(ei.value)


def test_bad_reset_input(env):
    with pytest.raises(ValueError, match="valid splits"):
        env.reset(seed=0, options={"split": "nope"})
    with pytest.raises(ValueError, match="ball"):  # a library object outside this task's categories
        env.reset(seed=0, options={"scenario": "ball_00|studio-wood-grey|p0"})


def test_lift_bad_robot_count():
    with pytest.raises(ValueError, match="needs 2 robot"):
        gym.make("DexLift-v0", robot_uids="floating_inspire_hand_right")


@pytest.mark.parametrize(
    "env_id, kwargs, words",
    [
        ("DexHandover-v0", dict(giver="middle"), ["middle", "right", "left"]),
        ("DexPour-v0", dict(num_particles=3), ["num_particles", "8..20"]),
        ("DexPour-v0", dict(target="plate_00"), ["plate_00", "bowl_00"]),
    ],
)
def test_task_option_errors(env_id, kwargs, words):
    with pytest.raises(ValueError) as ei:
        gym.make(env_id, **kwargs)
    for w in words:
        assert w in str(ei.value)


def test_handover_giver_reset_option():
    e = gym.make("DexHandover-v0")
    with pytest.raises(ValueError, match="valid"):
        e.reset(seed=0, options={"giver": "both"})
    for giver in ("right", "left"):
        _, info = e.reset(seed=0, options={"giver": giver})
        u = e.unwrapped
        assert info["giver"] == giver and u._hands[u.giver].hand_side == giver
        # the object starts on the giver's palm, off the table and within the giver's reach
        assert u.object_bottom().item() > 0.1
        assert u.distance_to_object(u.palm_points(u.giver)).min().item() < 0.02
        assert u.distance_to_object(u.palm_points(u.receiver)).min().item() > 0.2
    e.close()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_raises_and_leaves_sim_intact(env, bad):
    obs0, _ = env.reset(seed=0)
    a = env.action_space.sample()
    a[2] = bad
    with pytest.raises(ValueError, match="non-finite"):
        env.step(a)
    obs, *_ = env.step(np.clip(np.nan_to_num(a, posinf=0.3, neginf=0.3), env.action_space.low, env.action_space.high))
    assert np.isfinite(obs).all()
