"""diffusion_policy's conditional 1D temporal U-Net (Chi et al. 2023): residual conv blocks over the action sequence,
each modulated by FiLM (a per-channel scale and bias) from the diffusion step embedding concatenated with the
observation features. `down_dims` sets the width; the default here is sized for this CPU (see benchmarks/policy_latency).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freq = torch.exp(torch.arange(half, device=x.device) * -(math.log(10000) / (half - 1)))
        emb = x.float()[:, None] * freq[None]
        return torch.cat([emb.sin(), emb.cos()], dim=-1)


class Conv1dBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int = 8):
        super().__init__(nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.GroupNorm(groups, c_out), nn.Mish())


class ConditionalResidualBlock1D(nn.Module):
    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int = 5, groups: int = 8):
        super().__init__()
        self.blocks = nn.ModuleList([Conv1dBlock(c_in, c_out, kernel, groups), Conv1dBlock(c_out, c_out, kernel, groups)])
        self.c_out = c_out
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))  # FiLM: scale and bias per channel
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.blocks[0](x)
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        out = scale * out + bias
        return self.blocks[1](out) + self.residual(x)


class ConditionalUnet1D(nn.Module):
    def __init__(self, action_dim: int, cond_dim: int, down_dims=(64, 128, 256), step_embed_dim: int = 64,
                 kernel: int = 5, groups: int = 8):
        super().__init__()
        self.step_encoder = nn.Sequential(SinusoidalPosEmb(step_embed_dim), nn.Linear(step_embed_dim, 4 * step_embed_dim),
                                          nn.Mish(), nn.Linear(4 * step_embed_dim, step_embed_dim))
        cond = step_embed_dim + cond_dim
        dims = [action_dim, *down_dims]
        pairs = list(zip(dims[:-1], dims[1:]))
        self.down = nn.ModuleList()
        for i, (a, b) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.down.append(nn.ModuleList([ConditionalResidualBlock1D(a, b, cond, kernel, groups),
                                            ConditionalResidualBlock1D(b, b, cond, kernel, groups),
                                            nn.Conv1d(b, b, 3, 2, 1) if not last else nn.Identity()]))
        mid = down_dims[-1]
        self.mid = nn.ModuleList([ConditionalResidualBlock1D(mid, mid, cond, kernel, groups) for _ in range(2)])
        self.up = nn.ModuleList()
        for a, b in reversed(pairs[1:]):  # every level but the top was downsampled once: upsample back
            self.up.append(nn.ModuleList([ConditionalResidualBlock1D(2 * b, a, cond, kernel, groups),
                                          ConditionalResidualBlock1D(a, a, cond, kernel, groups),
                                          nn.ConvTranspose1d(a, a, 4, 2, 1)]))
        self.final = nn.Sequential(Conv1dBlock(down_dims[0], down_dims[0], kernel, groups),
                                   nn.Conv1d(down_dims[0], action_dim, 1))

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """sample (B, T, action_dim), timestep (B,) or scalar, cond (B, cond_dim) -> (B, T, action_dim)."""
        x = sample.transpose(1, 2)
        t = torch.as_tensor(timestep, device=x.device).expand(x.shape[0])
        c = torch.cat([self.step_encoder(t), cond], dim=-1)
        skips = []
        for res1, res2, down in self.down:
            x = res2(res1(x, c), c)
            skips.append(x)
            x = down(x)
        for block in self.mid:
            x = block(x, c)
        for res1, res2, up in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = up(res2(res1(x, c), c))
        return self.final(x).transpose(1, 2)
