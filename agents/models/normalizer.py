"""`Normalizer`: the dataset's statistics as module buffers, so they travel inside every checkpoint. Low-dimensional
keys and actions map to [-1, 1] by their min/max (diffusion_policy's convention); uint8 images to [0, 1]."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Normalizer(nn.Module):
    def __init__(self, stats: dict[str, dict], image_keys: tuple[str, ...] = ()):
        super().__init__()
        self.keys = list(stats)
        self.image_keys = set(image_keys)
        for k in self.keys:
            if k in self.image_keys:
                continue
            lo = torch.as_tensor(np.asarray(stats[k]["min"]), dtype=torch.float32)
            hi = torch.as_tensor(np.asarray(stats[k]["max"]), dtype=torch.float32)
            self.register_buffer(f"{k}__lo", lo)
            self.register_buffer(f"{k}__span", (hi - lo).clamp_min(1e-6))  # a constant dimension maps to -1

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        if key in self.image_keys:
            return x.float() / 255.0
        return 2 * (x.float() - getattr(self, f"{key}__lo")) / getattr(self, f"{key}__span") - 1

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return (x + 1) / 2 * getattr(self, f"{key}__span") + getattr(self, f"{key}__lo")
