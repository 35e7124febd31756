"""The wrist-pose control maths against the simulator."""

import gymnasium as gym
import numpy as np
import torch

import dexenvs  # noqa: F401
from dexenvs.robots import matrix_to_rot6d, pose_to_root_joints, quat_to_matrix, root_joints_to_pose, rot6d_to_matrix


def _random_rotations(n: int, seed: int = 0) -> torch.Tensor:
    q = torch.as_tensor(np.random.default_rng(seed).normal(size=(n, 4)), dtype=torch.float32)
    return quat_to_matrix(q / q.norm(dim=-1, keepdim=True))


def test_rot6d_round_trip():
    r = _random_rotations(64)
    torch.testing.assert_close(rot6d_to_matrix(matrix_to_rot6d(r)), r, atol=1e-5, rtol=0)


def test_root_joint_inverse_kinematics_round_trip():
    rot = _random_rotations(64, seed=1)
    pos = torch.as_tensor(np.random.default_rng(2).uniform(-0.3, 0.3, size=(64, 3)), dtype=torch.float32)
    q = pose_to_root_joints(pos, rot, torch.zeros(64, 6))
    p2, r2 = root_joints_to_pose(q)
    torch.testing.assert_close(p2, pos, atol=1e-4, rtol=0)
    torch.testing.assert_close(r2, rot, atol=1e-4, rtol=0)


def test_wrist_pose_action_is_tracked_in_sim():
    env = gym.make("DexGrasp-v0").unwrapped
    env.reset(seed=0)
    rot = _random_rotations(1, seed=3)
    pos = torch.tensor([[0.05, -0.05, 0.35]])
    action = env.wrist_action(pos, rot, torch.zeros(1, 6))
    for _ in range(40):  # rate-limited: large rotations take several steps
        env.step(action)
    hs = env.hand_state()
    assert (hs["wrist_pos"] - pos).norm() < 0.005
    cos = ((quat_to_matrix(hs["wrist_quat"]).transpose(1, 2) @ rot).diagonal(dim1=1, dim2=2).sum() - 1) / 2
    err = torch.acos(cos.clamp(-1, 1))
    assert float(err) < 0.02  # radians


def test_wrist_targets_are_rate_limited():
    env = gym.make("DexGrasp-v0").unwrapped
    env.reset(seed=0)
    start = env.hand_state()["wrist_pos"].clone()
    far = start + torch.tensor([[0.0, 0.0, 0.4]])
    env.step(env.wrist_action(far, quat_to_matrix(env.hand_state()["wrist_quat"]), torch.zeros(1, 6)))
    moved = (env.hand_state()["wrist_pos"] - start).norm()
    assert 0.01 < moved <= 1.0 / env.control_freq + 1e-3
