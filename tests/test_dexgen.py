"""The DexGen controller: training lowers both losses and resumes, a checkpoint reloads and acts deterministically,
guidance pulls samples toward the command (more with larger alpha) and alpha = 0 is plain sampling, bad commands are
refused, and the keypoint-command wrappers pass gymnasium's checker."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.dexgen.commands import PlannerCommand, TeleopCommand
from agents.dexgen.controller import DexGenController, DirectController
from agents.dexgen.data import load_samples
from agents.dexgen.features import MODES
from agents.dexgen.train import DexGenConfig, load_dexgen, train
from dexenvs.cli import DexError, UsageError
from generators.free_motion import FreeMotionConfig, build_free_motion
from generators.transitions import TransitionConfig, build_transitions

ENV_ID = "DexRegrasp-v0"
SMALL = DexGenConfig(width=64, blocks=2, id_blocks=2, ddim_steps=6, batch_size=128, warmup_steps=20, lr=1e-3)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("dexgen")
    tr = build_transitions(TransitionConfig(objects=("cube_00",), per_object=8, steps=20, workers=1,
                                            out=root / "transitions"), progress=False)
    free = build_free_motion(FreeMotionConfig(episodes=4, steps=20, workers=1, out=root / "free"), progress=False)
    return root, [root / "transitions" / "transitions.hdf5", free], tr


@pytest.fixture(scope="module")
def trained(data):
    root, datasets, _ = data
    summary = train(datasets, root / "run", SMALL, steps=300, seed=0, progress=False, ckpt_every=100)
    return root / "run" / "checkpoint.pt", summary


def test_samples_carry_both_modes_and_the_shapes_the_model_expects(data):
    _, datasets, _ = data
    s = [load_samples(d, history=4, horizon=2, mask="train") for d in datasets]
    assert {MODES[int(m)] for m in s[0].mode} == {"regrasp"} and {MODES[int(m)] for m in s[1].mode} == {"free"}
    for x in s:
        assert x.history.shape[1:] == (4, 24 + 3 * 16) and x.motion.shape[1:] == (2, 24) and x.offset.shape[1:] == (16,)
        assert np.isfinite(x.history).all() and np.isfinite(x.motion).all()
        # the last history entry is the step's own state; the motion is relative to its keypoints
        assert np.abs(x.motion).max() < 0.1


def test_training_lowers_both_losses_and_resumes(trained, data):
    ckpt, summary = trained
    assert summary["step"] == 300
    assert summary["final"]["diffusion"] < 0.6 * summary["first"]["diffusion"]
    assert summary["final"]["inverse"] < 0.6 * summary["first"]["inverse"]
    run = ckpt.parent
    assert (run / "loss.png").stat().st_size > 0
    with pytest.raises(UsageError, match="--resume"):
        train(data[1], run, SMALL, steps=300, progress=False)
    import shutil

    copy = run.parent / "resumed"
    shutil.copytree(run, copy)
    more = train(data[1], copy, SMALL, steps=340, resume=True, progress=False, ckpt_every=100)
    assert more["step"] == 340
    import json

    steps = [json.loads(line)["step"] for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 340 and len(steps) == len(set(zip(steps, range(len(steps)))))


def test_a_missing_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(DexError, match="no DexGen checkpoint"):
        load_dexgen(tmp_path / "none.pt")
    torch.save({"config": {}, "model": {}}, tmp_path / "other.pt")
    with pytest.raises(DexError, match="not a DexGen checkpoint"):
        load_dexgen(tmp_path / "other.pt")


def _cond(model, data):
    s = load_samples(data[1][0], model.history, model.horizon, "train")
    i = np.arange(min(16, len(s)))
    return model.condition(torch.from_numpy(s.history[i]), torch.from_numpy(s.mode[i])), torch.from_numpy(s.motion[i])


def test_guidance_pulls_samples_toward_the_command_and_alpha_zero_is_plain_sampling(trained, data):
    model = load_dexgen(trained[0])
    cond, motion = _cond(model, data)
    command = (motion.flip(0) + 0.004).reshape(len(cond), model.horizon, model.K, 3)  # other steps' motions, shifted
    dist = []
    for alpha in (0.0, 1.0, 10.0, 100.0):
        x = model.sample(cond, command, alpha, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(x).all()
        dist.append(float((model.norm("motion", x.reshape(len(x), -1))
                           - model.norm("motion", command.reshape(len(x), -1))).norm(dim=-1).mean()))
    assert all(b < a for a, b in zip(dist, dist[1:])), dist
    assert dist[-1] < 0.5 * dist[0], dist
    plain = model.sample(cond, None, 0.0, generator=torch.Generator().manual_seed(0))
    zero = model.sample(cond, command, 0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(plain, zero)


def test_controller_reloads_and_acts_deterministically(trained):
    runs = []
    for _ in range(2):
        env = DexGenController(gym.make(ENV_ID, control_mode="pd_joint_pos"), trained[0], alpha=1.0, seed=3)
        obs, _ = env.reset(seed=5)
        cmd = np.zeros(env.action_space.shape, np.float32)
        for _ in range(4):
            obs, *_ = env.step(cmd)
        runs.append((obs.copy(), env.last_motion.clone()))
        env.close()
    assert np.array_equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_bad_commands_and_settings_are_refused_clearly(trained):
    env = DexGenController(gym.make(ENV_ID, control_mode="pd_joint_pos"), trained[0])
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2, 8, 3\)"):
        env.step(np.zeros((8, 3), np.float32))
    bad = np.zeros(env.action_space.shape, np.float32)
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        env.step(bad)
    with pytest.raises(ValueError, match="alpha"):
        env.alpha = -1.0
    with pytest.raises(ValueError, match="valid: \\['regrasp', 'free'\\]"):
        env.mode = "juggle"
    env.close()
    with pytest.raises(ValueError, match="pd_joint_pos"):
        DexGenController(gym.make(ENV_ID), trained[0])


@pytest.mark.parametrize("which", ["dexgen", "direct"])
def test_wrappers_pass_gymnasiums_checker(trained, which):
    from gymnasium.utils.env_checker import check_env

    base = gym.make(ENV_ID, control_mode="pd_joint_pos")
    env = DexGenController(base, trained[0]) if which == "dexgen" else DirectController(base)
    check_env(env, skip_render_check=True)
    env.close()


def test_command_sources_drive_both_executors(trained):
    model = load_dexgen(trained[0])
    for wrap in (lambda e: DirectController(e), lambda e: DexGenController(e, model=model)):
        env = wrap(gym.make(ENV_ID, control_mode="pd_joint_pos", goals_per_episode=100))
        for src in (PlannerCommand(env, "add", 1.5, model.motion_std.numpy()), PlannerCommand(env, "mul", 0.5),
                    TeleopCommand(env, steps=5)):
            env.reset(seed=1)
            src.reset(1)
            for _ in range(3):
                c = src()
                assert c.shape == (1, 2, 8, 3) and torch.isfinite(c).all()
                env.step(c)
        env.close()
    with pytest.raises(ValueError, match="valid: \\['clean', 'add', 'mul'\\]"):
        PlannerCommand(env, "gauss", 1.0)
