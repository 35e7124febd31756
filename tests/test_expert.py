"""The scripted grasp expert meets its bar; random actions do not grasp."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import dexenvs  # noqa: F401
from dexenvs.experts import EXPERTS, rollout
from dexenvs.experts.grasp import PHASES


def _rate(task: str, split: str, episodes: int, seed0: int = 0, **expert_kwargs) -> float:
    env_id, cls = EXPERTS[task]
    env = gym.make(env_id, split=split).unwrapped
    expert = cls(env, **expert_kwargs)
    wins = sum(bool(rollout(env, expert, seed=seed0 + i)["success"][0]) for i in range(episodes))
    return wins / episodes


def test_grasp_expert_train_success_at_least_90_percent():
    assert _rate("grasp", "train", 30, seed0=500) >= 0.9


def test_lift_expert_train_success_at_least_85_percent():
    assert _rate("lift", "train", 20, seed0=500) >= 0.85


@pytest.mark.parametrize("hand", [0, 1])
def test_lift_object_is_not_liftable_with_one_hand(hand):
    assert _rate("lift", "train", 6, seed0=700, hands=(hand,)) == 0.0


def test_lift_phase_labels_are_per_hand_and_synchronised():
    env = gym.make("DexLift-v0").unwrapped
    out = rollout(env, EXPERTS["lift"][1](env), seed=2)
    labels = [p[0] for p in out["phases"]]  # env 0: (left, right)
    assert all(len(l) == 2 and l[0] == l[1] for l in labels)
    order = [labels[0][0]] + [b[0] for a, b in zip(labels, labels[1:]) if a != b]
    assert order[:3] == ["approach", "grasp", "lift"]


def test_expert_phase_labels():
    env = gym.make("DexGrasp-v0").unwrapped
    out = rollout(env, EXPERTS["grasp"][1](env), seed=1)
    labels = [p[0] for p in out["phases"]]
    assert set(labels) <= set(PHASES)
    order = [labels[0]] + [b for a, b in zip(labels, labels[1:]) if a != b]
    assert order[:3] == ["approach", "grasp", "lift"]


@pytest.mark.parametrize("env_id", ["DexGrasp-v0", "DexLift-v0"])
def test_random_policy_does_not_succeed(env_id):
    env = gym.make(env_id)
    env.action_space.seed(0)
    wins = 0
    for ep in range(8):
        env.reset(seed=ep)
        for _ in range(env.spec.max_episode_steps):
            _, _, term, trunc, info = env.step(env.action_space.sample())
            if term or trunc:
                break
        wins += bool(info["success"])
    assert wins == 0


@pytest.mark.slow
@pytest.mark.parametrize("task", ["grasp", "lift"])
@pytest.mark.parametrize("split", ["train", "test_objects", "test_oep"])
def test_expert_on_every_split(task, split):
    assert _rate(task, split, 50) >= (0.9 if split == "train" else 0.8)
