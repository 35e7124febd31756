"""A human regrasp in the EgoDex layout drives a keypoint-command controller: the stand-in regrasp reads back, its
fingertips retargeted to the Allegro hand give the planner's keypoint path within millimetres, and `PathCommand` turns
that path into commands the controllers take."""

import h5py
import numpy as np
import torch

from generators.human.reader import EgoDexEpisode, episodes


def test_a_human_regrasp_retargets_to_the_planners_keypoints_and_commands_the_controller(tmp_path):
    from agents.dexgen.commands import PathCommand
    from agents.dexgen.controller import DirectController
    from agents.dexgen.kinematics import KeypointKinematics
    from generators.human.regrasp import Args, _env, fingertip_path, main, play

    assert len(main(Args(episodes=1, out=tmp_path, noise=0.0))) == 1
    (path,) = episodes(tmp_path)
    with h5py.File(path) as f:
        seed, scenario, success = int(f.attrs["reset_seed"]), str(f.attrs["scenario"]), int(f.attrs["success"])
        assert f.attrs["task"] == "regrasp" and "stand-in" in f.attrs["source"]
    assert success == 1  # the first of TRIES seeds on which the planner regrasps
    env = _env()
    kin = KeypointKinematics(env)
    sim = play(env, seed)
    assert sim["scenario"] == scenario
    truth = np.array([kin.fk(q) for q in sim["q"]])
    got = fingertip_path(EgoDexEpisode(path), env.control_freq, kin)
    assert got.shape == truth.shape
    err = np.linalg.norm(got - truth, axis=-1)
    assert err[:, :4].mean() < 0.005  # fingertips: retargeting back reaches the planner's within 5 mm
    env.close()

    import gymnasium as gym

    w = DirectController(gym.make("DexRegrasp-v0", control_mode="pd_joint_pos", goals_per_episode=1), horizon=4)
    w.reset(seed=seed, options=dict(scenario=scenario))
    cmd = PathCommand(w, got)
    cmd.reset(seed)
    c = cmd()
    assert c.shape == (1, 4, 8, 3) and torch.isfinite(c).all()
    now = w.unwrapped.snapshot()["keypoints"].cpu().numpy()
    assert np.allclose(c[0, 1].numpy(), np.clip(got[1] - now[0], -0.05, 0.05), atol=1e-6)  # step k aims at waypoint k
    w.step(c)
    w.close()
