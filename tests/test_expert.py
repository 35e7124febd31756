"""The scripted grasp expert meets its bar; random actions do not grasp."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import dexenvs  # noqa: F401
from dexenvs.experts import EXPERTS, rollout
from dexenvs.experts.grasp import PHASES


def _rate(split: str, episodes: int, seed0: int = 0) -> float:
    env_id, cls = EXPERTS["grasp"]
    env = gym.make(env_id, split=split).unwrapped
    expert = cls(env)
    wins = sum(bool(rollout(env, expert, seed=seed0 + i)["success"][0]) for i in range(episodes))
    return wins / episodes


def test_expert_train_success_at_least_90_percent():
    assert _rate("train", 30, seed0=500) >= 0.9


def test_expert_phase_labels():
    env = gym.make("DexGrasp-v0").unwrapped
    out = rollout(env, EXPERTS["grasp"][1](env), seed=1)
    labels = [p[0] for p in out["phases"]]
    assert set(labels) <= set(PHASES)
    order = [labels[0]] + [b for a, b in zip(labels, labels[1:]) if a != b]
    assert order[:3] == ["approach", "grasp", "lift"]


def test_random_policy_does_not_succeed():
    env = gym.make("DexGrasp-v0")
    env.action_space.seed(0)
    wins = 0
    for ep in range(8):
        env.reset(seed=ep)
        for _ in range(120):
            _, _, term, trunc, info = env.step(env.action_space.sample())
            if term or trunc:
                break
        wins += bool(info["success"])
    assert wins == 0


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "test_objects", "test_oep"])
def test_expert_on_every_split(split):
    assert _rate(split, 50) >= (0.9 if split == "train" else 0.8)
