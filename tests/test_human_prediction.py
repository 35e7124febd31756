"""EgoDex's best-of-K metric: the same for every K for a deterministic model, never rising with K for a stochastic one,
and zero for a model that predicts the truth."""

import numpy as np
import torch

from benchmarks.human_prediction import best_of_k, keypoints, train_model


def synthetic(n=64, t=10, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(0, 0.1, (n, 48)).astype(np.float32)
    future = (obs[:, None] + np.linspace(0, 0.05, t)[None, :, None]).astype(np.float32)  # a drift from the pose
    return dict(obs=obs, future=future, mask=np.ones((n, t, 12), bool))


def test_keypoints_pick_both_wrists_and_tips():
    a = np.arange(48, dtype=np.float32)
    k = keypoints(a)
    assert k.shape == (12, 3) and list(k[0]) == [0, 1, 2] and list(k[1]) == [9, 10, 11] and list(k[6]) == [24, 25, 26]


def test_best_of_k_is_flat_for_bc_and_never_rises_for_diffusion():
    train, test = synthetic(seed=0), synthetic(seed=1)
    bc, _ = train_model("bc", train, 50, 32, 0)
    figs = [best_of_k(bc, test, k, 0) for k in (1, 5, 10)]
    assert figs[0] == figs[1] == figs[2]
    dp, losses = train_model("diffusion", train, 30, 32, 0)
    assert np.isfinite(losses).all()
    avg = [best_of_k(dp, test, k, 0)[0] for k in (1, 5, 10)]
    assert avg[0] >= avg[1] >= avg[2] and avg[0] > avg[2]


def test_a_perfect_model_scores_zero():
    test = synthetic(seed=2)

    class Oracle:
        def sample(self, obs, generator=None):
            return torch.as_tensor(test["future"])

    assert best_of_k(Oracle(), test, 3, 0) == (0.0, 0.0)
