"""The hardware env on the loopback robot: spaces checked at construction, the safety layer's limits under random and
adversarial commands (nothing that reaches a driver breaks one), the watchdog, the e-stop, refused actions that send
nothing, and `agents.deploy` recording a dataset that replay and training accept."""

import os
import signal
import time

import numpy as np
import pytest

import dexenvs  # noqa: F401
from dexenvs.hardware.drivers import Devices
from dexenvs.hardware.env import HardwareEnv, SpaceMismatch, check_spaces, mimic_relations
from dexenvs.hardware.loopback import LoopbackConfig, LoopbackRobot
from dexenvs.hardware.safety import SafetyConfig, SafetyLayer, SafetyStop

ENV = "DexGrasp-v0"


@pytest.fixture(scope="module")
def robot():
    r = LoopbackRobot(ENV)
    yield r
    r.close()


def make_env(robot, config=None, **kw):
    robot.cfg.stale = 0.0
    return HardwareEnv(ENV, Devices(joints=robot.drivers(), object_pose=robot.pose_source()), config or SafetyConfig(),
                       reset_hook=robot.reset_hook, **kw)


def sent_counts(env):
    return [len(d.sent) for d in env.devices.joints]


def test_devices_that_do_not_match_the_task_are_named_at_construction(robot):
    arm, hand = robot.drivers()
    with pytest.raises(SpaceMismatch, match="no driver moves .*right_hand_index_MCP_joint"):
        HardwareEnv(ENV, Devices(joints=[arm], object_pose=robot.pose_source()), reset_hook=None, watchdog=False)
    with pytest.raises(SpaceMismatch, match="extra/obj_pose: .*no object-pose source"):
        HardwareEnv(ENV, Devices(joints=[arm, hand]), reset_hook=None, watchdog=False)
    both = robot.drivers({"a": arm.joint_names + hand.joint_names[:1], "b": hand.joint_names})
    with pytest.raises(SpaceMismatch, match="driven by both"):
        HardwareEnv(ENV, Devices(joints=both, object_pose=robot.pose_source()), reset_hook=None, watchdog=False)
    with pytest.raises(SpaceMismatch, match="no camera named 'head'"):
        HardwareEnv(ENV, Devices(joints=[arm, hand], object_pose=robot.pose_source()), obs_mode="rgb",
                    reset_hook=None, watchdog=False)
    import gymnasium as gym

    sim = gym.spaces.Dict({"agent": gym.spaces.Dict({"qpos": gym.spaces.Box(-1, 1, (20,), np.float32)})})
    hw = gym.spaces.Dict({"agent": gym.spaces.Dict({"qpos": gym.spaces.Box(-1, 1, (14,), np.float64)}),
                          "extra": gym.spaces.Dict({})})
    assert check_spaces(sim, hw) == ["agent/qpos: shape (14,) on the hardware, (20,) in the sim",
                                     "agent/qpos: dtype float64 on the hardware, float32 in the sim",
                                     "extra: not in the sim task"]


def test_passive_joints_follow_the_urdf_mimic_relations(robot):
    env = make_env(robot, watchdog=False)
    try:
        rel = mimic_relations(env.twin.agent.urdf_path)
        assert rel["right_hand_index_PIP_joint"][0] == "right_hand_index_MCP_joint"
        obs, _ = env.reset(seed=0)
        # the twin's passive joints computed from the measured actuated ones equal the loopback sim's own
        twin_q = env.twin.agent.robot.get_qpos()[0].numpy()
        real_q = robot.env.agent.robot.get_qpos()[0].numpy()
        names = [j.name for j in env.twin.agent.robot.get_active_joints()]
        ip = names.index("right_hand_thumb_IP_joint")
        # the sim holds its passive thumb tip joint only loosely to the linkage (ManiSkill's keyframe sets it off the
        # URDF relation); every other joint matches
        assert np.abs(np.delete(twin_q - real_q, ip)).max() < 1e-3 and abs(twin_q[ip] - real_q[ip]) < 0.05
        assert obs["agent"]["qpos"].shape == (20,) and obs["agent"]["qpos"].dtype == np.float32
    finally:
        env.close()


def test_safety_layer_keeps_every_target_inside_every_limit():
    """Property test without a sim: 5,000 random, extreme, oscillating and jumping targets."""
    rng = np.random.default_rng(0)
    n = 8
    lower, upper = -np.ones(n), np.ones(n)
    prismatic = np.array([True, True, True] + [False] * 5)
    cfg = SafetyConfig(workspace_low=(-0.5, -0.5, -0.5), workspace_high=(0.5, 0.5, 0.5))
    s = SafetyLayer([f"j{i}" for i in range(n)], lower, upper, prismatic, 0.05, cfg, wrist_position=lambda q: q[:3])
    q, prev = np.zeros(n), None
    for k in range(5000):
        kind = k % 4
        t = (rng.uniform(-50, 50, n) if kind == 0 else np.sign(rng.normal(size=n)) * 1e6 if kind == 1
             else (1 if k % 8 < 4 else -1) * np.full(n, 3.0) if kind == 2 else q + rng.normal(0, 5, n))
        safe, _ = s.filter(t, q, stamp=k * 0.05, now=k * 0.05)  # one reading per control period
        assert safe is not None
        assert s.violations(safe, prev) == []
        prev = q = safe  # a perfect robot: measured = sent
    assert s.counts["step_limit"] > 0 and s.counts["workspace"] > 0 and s.counts["joint_limit"] > 0


def test_adversarial_commands_on_the_loopback_never_reach_a_driver_out_of_limits(robot):
    # a box 10 cm around the start wrist (-0.05, 0, 0.30), so that the commands reach its walls within the test
    env = make_env(robot, SafetyConfig(workspace_low=(-0.10, -0.05, 0.25), workspace_high=(0.0, 0.05, 0.35)))
    rng = np.random.default_rng(1)
    low, high = env.action_space.low, env.action_space.high
    try:
        env.reset(seed=3)
        for k in range(80):
            kind = k % 5
            a = (rng.uniform(low, high) if kind == 0 else np.where(rng.random(low.shape) < 0.5, low, high) if kind == 1
                 else (low if k % 10 < 5 else high) if kind == 2 else rng.uniform(low, high) * 10 if kind == 3
                 else np.full(low.shape, np.nan))
            before = sent_counts(env)
            if kind == 4:
                with pytest.raises(ValueError, match="non-finite"):
                    env.step(a)
                assert sent_counts(env) == before  # refused: nothing was sent
                continue
            a = np.clip(a, -1e3, 1e3)
            _, _, _, trunc, info = env.step(a.astype(np.float32))
            if info["safety"]["stopped"]:  # a real stop (e.g. overspeed from a slammed joint) is allowed, not a breach
                env.clear_stop()
        sent = np.concatenate([np.stack(d.sent) for d in env.devices.joints], axis=1)
        order = np.concatenate([env._driver_idx[i] for i in range(len(env.devices.joints))])
        full = np.zeros_like(sent)
        full[:, order] = sent
        for i in range(len(full)):
            assert env.safety.violations(full[i], None) == [], i
        steps = np.abs(np.diff(full, axis=0))
        assert np.all(steps <= env.safety.max_step + 1e-6)
        assert env.safety.counts["step_limit"] > 0 and env.safety.counts["workspace"] > 0
    finally:
        env.close()


def test_bad_actions_are_refused_before_anything_is_sent(robot):
    env = make_env(robot)
    try:
        env.reset(seed=0)
        before = sent_counts(env)
        with pytest.raises(ValueError, match=r"shape \(3,\); the task takes \(15,\)"):
            env.step(np.zeros(3))
        with pytest.raises(ValueError, match="non-finite"):
            env.step(np.full(15, np.inf))
        with pytest.raises(ValueError, match="not an array of numbers"):
            env.step("open")
        assert sent_counts(env) == before
    finally:
        env.close()


def test_watchdog_stops_within_two_periods_of_a_stale_sensor(robot):
    env = make_env(robot)
    try:
        obs, _ = env.reset(seed=0)
        hold = obs["extra"]["wrist_pose"]
        a = np.concatenate([[-0.05, 0.0, 0.30], [0, 1, 0, -1, 0, 0], np.zeros(6)]).astype(np.float32)
        for _ in range(3):
            env.step(a)
        robot.cfg.stale = 1.0  # every reading from now on repeats the last one, its timestamp included
        frozen = robot._last_joint.stamp
        t_stale = frozen + env.period  # when the next reading was due
        for _ in range(10):
            _, _, _, trunc, info = env.step(a)
            if info["safety"]["stopped"]:
                break
        assert info["safety"]["stopped"].startswith("stale_sensor"), info["safety"]
        assert trunc
        assert env.safety.stopped.stamp - t_stale <= 2 * env.period
        del hold
    finally:
        robot.cfg.stale = 0.0
        env.close()


def test_watchdog_stops_a_robot_whose_commands_stop_coming(robot):
    env = make_env(robot)
    try:
        env.reset(seed=0)
        time.sleep(env.period * (env.safety.cfg.command_periods + 3))
        assert env.safety.stopped is not None and env.safety.stopped.kind == "late_command"
        before = sent_counts(env)
        _, _, _, trunc, info = env.step(env.action_space.sample() * 0)
        assert trunc and info["safety"]["stopped"].startswith("late_command") and sent_counts(env) == before
        env.reset(seed=1)  # a new episode clears a stop that is not an e-stop
        assert env.safety.stopped is None
    finally:
        env.close()


def test_estop_stops_and_stays_stopped_until_reset(robot, tmp_path):
    flag = tmp_path / "ESTOP"
    env = make_env(robot, SafetyConfig(estop_file=flag, log=tmp_path / "log.jsonl"))
    try:
        obs, _ = env.reset(seed=0)
        a = env.action_space.sample()
        env.step(a)
        flag.touch()
        before = sent_counts(env)
        for _ in range(3):
            _, _, _, trunc, info = env.step(a)
            assert trunc and info["safety"]["stopped"].startswith("estop")
        assert sent_counts(env) == before
        with pytest.raises(SafetyStop, match="e-stopped"):
            env.reset(seed=1)
        flag.unlink()
        env.reset(seed=1)
        env.step(a)
        assert sent_counts(env) != before
        # the signal: kill -USR1 <pid>
        assert env.safety.install_signal()
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.05)
        _, _, _, trunc, info = env.step(a)
        assert trunc and "SIGUSR1" in info["safety"]["stopped"]
        with pytest.raises(SafetyStop):
            env.reset(seed=2)
        env.clear_stop()
        env.reset(seed=2)
        lines = (tmp_path / "log.jsonl").read_text().splitlines()
        assert any('"estop"' in line for line in lines)
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        env.close()


def test_deploy_on_the_loopback_records_a_dataset_replay_and_training_accept(tmp_path):
    from agents import deploy, train
    from generators import augment, replay, seed

    src = seed.main(seed.Args(task="grasp", out=tmp_path / "seed.hdf5"))
    state = tmp_path / "state.hdf5"
    augment.generate("grasp", src, state, 4, workers=1, progress=False)
    tiny = dict(hidden_dims=(64, 64), batch_size=64, warmup_steps=10, eval_every=0, progress=False)
    train.main(train.Args(algo="bc", dataset=state, out=tmp_path / "bc", steps=100, **tiny))
    out = tmp_path / "deploy"
    report = deploy.main(deploy.Args(ckpt=tmp_path / "bc" / "checkpoint.pt", task="grasp", episodes=2, out=out,
                                     progress=False))
    assert report["episodes"] == 2 and report["sim"]["episodes"] == 2
    assert report["timing"]["periods"] > 0 and "p99_ms" in report["timing"]
    assert (out / "report.json").exists()
    # the same command refuses to overwrite what it recorded
    from dexenvs.cli import UsageError

    with pytest.raises(UsageError, match="exists"):
        deploy.Args(ckpt=tmp_path / "bc" / "checkpoint.pt", out=out).check()
    summary = replay.main(replay.Args(path=out / "deploy.hdf5", by="state"))
    # the recorded states are the measured ones: set in the sim again, they give the recorded outcome
    assert summary["demos"] == 2 and summary["by_state_reproduces"] == 2
    s = train.main(train.Args(algo="bc", dataset=out / "deploy.hdf5", out=tmp_path / "bc2", steps=2, **tiny))
    assert np.isfinite(s["final_loss"])


def test_overspeed_and_force_limits_and_device_faults_stop_or_hold():
    names = ["a", "b"]
    s = SafetyLayer(names, -np.ones(2), np.ones(2), np.zeros(2, bool), 0.05,
                    SafetyConfig(max_velocity_rad=2.0, force_limit=10.0))
    safe, _ = s.filter(np.array([0.05, 0.05]), np.zeros(2), stamp=0.0, now=0.0)
    assert safe is not None
    # a joint over its force limit is held where it is measured; the other moves on
    safe, ev = s.filter(np.array([0.2, 0.2]), np.array([0.04, 0.04]), stamp=0.05, now=0.05, force=np.array([12.0, 1.0]))
    assert safe[0] == pytest.approx(0.04) and safe[1] > 0.1 and [e.kind for e in ev] == ["force", "step_limit"]
    # measured at 4 rad/s against a cap of 2: stop, nothing to send, and it stays stopped
    safe, ev = s.filter(np.zeros(2), np.array([0.24, 0.04]), stamp=0.10, now=0.10)
    assert safe is None and s.stopped.kind == "overspeed" and s.stopped.joints == ["a"]
    assert s.filter(np.zeros(2), np.array([0.24, 0.04]), stamp=0.15, now=0.15)[0] is None
    s.reset(np.array([0.24, 0.04]))
    safe, _ = s.filter(np.array([0.24, 0.04]), np.array([0.24, 0.04]), stamp=0.20, now=0.20, faults=("index: over-current",))
    assert safe is None and s.stopped.kind == "fault" and "over-current" in s.stopped.detail


def test_a_device_that_stops_answering_stops_the_others_and_raises(robot):
    from dexenvs.hardware.drivers import DeviceError

    env = make_env(robot, watchdog=False)
    arm, hand = env.devices.joints
    try:
        env.reset(seed=0)

        def dead():
            raise DeviceError("hand on /dev/ttyUSB0: no reply to a read of ANGLE_ACT (1546) within 50 ms")

        hand.read = dead
        with pytest.raises(DeviceError, match="no reply"):
            env.step(env.action_space.sample())
        assert env.safety.stopped.kind == "fault" and "no reply" in env.safety.stopped.detail
        # the arm was told to hold: its targets are where its joints are
        assert np.abs(robot._target[:8] - robot._qpos()[:8]).max() < 1e-6
    finally:
        del hand.read
        env.close()


def test_camera_images_are_cropped_and_resized_to_the_sim_camera():
    from dexenvs.hardware.env import fit_image

    img = np.zeros((480, 640, 3), np.uint8)
    img[:, 80:560] = 255  # the centre square survives the crop, the side bands do not
    out = fit_image(img, (128, 128))
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8 and out.min() == 255


@pytest.mark.parametrize("hardware", ["inspire-serial", "inspire-modbus"])
def test_the_inspire_hand_over_its_protocols_runs_the_task_and_its_faults_stop_it(hardware):
    from dexenvs.hardware.drivers import DeviceError
    from dexenvs.hardware.setups import InspireLink, make_setup

    setup = make_setup(hardware, ENV, link=InspireLink(emulate=True))
    emu = setup.closers[0]
    env = HardwareEnv(ENV, setup.devices, reset_hook=setup.reset_hook)
    try:
        obs, _ = env.reset(seed=0)
        # hold the wrist where it starts (palm down, fingers along +x) and close the fingers
        a = np.concatenate([obs["extra"]["wrist_pose"][:3], [0, 1, 0, 1, 0, 0], [-1.3, 0, -0.6, -0.6, -0.6, -0.6]])
        a = a.astype(np.float32)
        for _ in range(6):
            _, _, _, trunc, info = env.step(a)
        assert not info["safety"]["stopped"]
        # the targets reached the hand's ANGLE_SET registers in its channel order, within the step limit per period
        # (pinky, ring, middle, index, thumb bend, thumb rotation; 1000 = open): the fingers at -0.6 of -1.34 rad, the
        # thumb bend open, the thumb rotation 6 x 0.1 rad of the way to -1.3 (the step limit)
        angle_set = emu.model.register("ANGLE_SET")
        expect = [1000 * (1 - 0.6 / 1.34)] * 4 + [1000, 1000 * (1 - 0.6 / 1.309)]
        assert np.allclose(angle_set, expect, atol=2), angle_set
        # an over-current on the index finger (register channel 3) stops the robot at the next step
        emu.model.inject_fault(3, 1 << 2)
        _, _, _, trunc, info = env.step(a)
        assert trunc and info["safety"]["stopped"].startswith("fault") and "over-current" in info["safety"]["stopped"]
        # a hand that stops answering: a clear error, and the arm is held
        emu.model.silent = True
        with pytest.raises(DeviceError, match="Inspire hand"):
            env.clear_stop()
    finally:
        emu.model.silent = False
        env.close()
        setup.close()
