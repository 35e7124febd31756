"""What the diffusion policy and BC share: the configuration (observation keys and shapes, horizons, the dataset's
statistics), the normalizer and the observation encoder. A model maps normalized observation histories to normalized
action chunks; `agents.policy.Policy` wraps it for acting."""

from __future__ import annotations

import torch
from torch import nn

from agents.models.encoders import ObsEncoder
from agents.models.normalizer import Normalizer


class ChunkModel(nn.Module):
    algo = ""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        images = {k: tuple(v) for k, v in cfg["images"].items()}
        self.normalizer = Normalizer(cfg["stats"], image_keys=tuple(images))
        self.encoder = ObsEncoder(cfg["low_dim"], images, cfg["obs_horizon"], cfg.get("image_feature_dim", 64))

    @property
    def obs_keys(self) -> list[str]:
        return sorted(self.cfg["low_dim"]) + sorted(self.cfg["images"])

    def normalize_obs(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: self.normalizer.normalize(k, obs[k]) for k in self.obs_keys}

    def loss(self, obs: dict[str, torch.Tensor], actions: torch.Tensor) -> torch.Tensor:
        """Raw (unnormalized) batch: obs {key: (B, To, ...)}, actions (B, Tp, A) -> scalar training loss."""
        raise NotImplementedError

    def sample(self, obs: dict[str, torch.Tensor], generator: torch.Generator | None = None, **kw) -> torch.Tensor:
        """Raw obs history -> (B, Tp, A) actions in the env's units."""
        raise NotImplementedError
