"""Behaviour cloning baseline: the same observation encoder and action chunks as the diffusion policy, an MLP that
regresses the normalized chunk directly (L2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from agents.models.base import ChunkModel


class BCModel(ChunkModel):
    algo = "bc"

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        dims = [self.encoder.feature_dim, *cfg["hidden_dims"]]
        layers = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.Mish()]
        self.head = nn.Sequential(*layers, nn.Linear(dims[-1], cfg["action_horizon"] * cfg["action_dim"]))

    def _predict(self, obs):
        out = self.head(self.encoder(self.normalize_obs(obs)))
        return out.view(len(out), self.cfg["action_horizon"], self.cfg["action_dim"])

    def loss(self, obs, actions):
        return F.mse_loss(self._predict(obs), self.normalizer.normalize("actions", actions))

    @torch.no_grad()
    def sample(self, obs, generator=None, **kw):
        return self.normalizer.unnormalize("actions", self._predict(obs).clamp(-1, 1))
