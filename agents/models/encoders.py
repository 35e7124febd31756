"""Observation encoders shared by the diffusion policy and BC: low-dimensional keys are concatenated as they are
(diffusion_policy's low-dim setting); each camera goes through a small CNN trained from scratch (no downloaded
weights), with random-shift augmentation while training. The features of the obs history are flattened into one
conditioning vector."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ImageEncoder(nn.Module):
    """(N, H, W, C) in [0, 1] -> (N, feature_dim): four stride-2 convs, GroupNorm, Mish, global average pooling."""

    def __init__(self, channels: int = 3, feature_dim: int = 64, width: int = 32, shift: int = 4):
        super().__init__()
        layers, c = [], channels
        for w in (width, 2 * width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, w, 3, 2, 1), nn.GroupNorm(8, w), nn.Mish()]
            c = w
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, feature_dim))
        self.shift = shift

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = img.permute(0, 3, 1, 2)
        if self.training and self.shift:  # random shift: pad by replication, crop back at a random offset
            n, _, h, w = x.shape
            x = F.pad(x, [self.shift] * 4, mode="replicate")
            dx, dy = torch.randint(0, 2 * self.shift + 1, (2,)).tolist()
            x = x[:, :, dy : dy + h, dx : dx + w]
        return self.net(x)


class ObsEncoder(nn.Module):
    def __init__(self, low_dim: dict[str, int], images: dict[str, tuple[int, int, int]], obs_horizon: int,
                 image_feature_dim: int = 64):
        super().__init__()
        self.low_dim_keys, self.image_keys = sorted(low_dim), sorted(images)
        self.cams = nn.ModuleDict({k.replace(".", "_"): ImageEncoder(images[k][-1], image_feature_dim)
                                   for k in self.image_keys})
        self.obs_horizon = obs_horizon
        self.feature_dim = (sum(low_dim.values()) + image_feature_dim * len(images)) * obs_horizon

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """obs: normalized, {key: (B, obs_horizon, ...)} -> (B, feature_dim)."""
        parts = [obs[k].flatten(2) for k in self.low_dim_keys]
        for k in self.image_keys:
            x = obs[k]
            b, t = x.shape[:2]
            parts.append(self.cams[k.replace(".", "_")](x.flatten(0, 1)).view(b, t, -1))
        return torch.cat(parts, -1).flatten(1)
