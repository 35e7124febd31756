"""The DexGen networks and guided sampling.

- `Denoiser`: a U-Net-free residual MLP (DexGen's "UNet of fully connected layers" without the skips' down/up
  sampling, which a 48-number sample does not need) that predicts the noise in a keypoint motion, FiLM-conditioned on
  the timestep and the state history with its mode.
- `InverseDynamics`: a residual MLP from (state history, mode, keypoint motion) to the joint targets, relative to the
  joints' positions now. Relative to the joints, not to the last targets: an error then does not add up step after
  step (a model of target changes integrates its errors, and lost the squeeze that holds the object within a second).
- `DexGen`: both, with the data's statistics as buffers (so they travel in the checkpoint), the DDPM training loss
  (diffusers' schedulers, 100 steps, squared-cosine, epsilon prediction) and guided DDIM sampling.

Guidance (DexGen III-D): at each DDIM step the step's prediction of the clean motion moves down the gradient of its
squared distance to the command, by alpha times the step's noise variance (capped so that no step overshoots), and the
step continues from the corrected prediction. Early, noisy steps follow the command most; the last ones let the
model pull the motion back onto what the data shows. Distances are in normalized units: motions are centred and
divided by one standard deviation per step ahead, the same for every keypoint and axis, so the distance stays a
Euclidean one and one alpha fits every hand size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

SCHEDULE = dict(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                clip_sample=True, clip_sample_range=5.0)  # z-scored samples: clip at 5 standard deviations


class Block(nn.Module):
    def __init__(self, width: int, cond_dim: int = 0):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.Mish(), nn.Linear(2 * width, width))
        self.film = nn.Linear(cond_dim, 2 * width) if cond_dim else None

    def forward(self, h, c=None):
        x = self.norm(h)
        if self.film is not None:
            scale, shift = self.film(c).chunk(2, -1)
            x = x * (1 + scale) + shift
        return h + self.mlp(x)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freq = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / half)
    a = t.float()[:, None] * freq[None]
    return torch.cat([a.sin(), a.cos()], -1)


class Denoiser(nn.Module):
    def __init__(self, x_dim: int, cond_dim: int, width: int, blocks: int):
        super().__init__()
        self.inp = nn.Linear(x_dim, width)
        self.time = nn.Sequential(nn.Linear(128, width), nn.Mish(), nn.Linear(width, width))
        self.cond = nn.Sequential(nn.Linear(cond_dim, width), nn.Mish(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(Block(width, width) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, x_dim))

    def forward(self, x, t, cond):
        c = self.time(timestep_embedding(t, 128)) + self.cond(cond)
        h = self.inp(x)
        for b in self.blocks:
            h = b(h, c)
        return self.out(h)


class InverseDynamics(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, width: int, blocks: int):
        super().__init__()
        self.inp = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(Block(width) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, out_dim))

    def forward(self, x):
        h = self.inp(x)
        for b in self.blocks:
            h = b(h)
        return self.out(h)


class DexGen(nn.Module):
    """cfg: history, horizon, keypoints, joints, feature_dim, modes, width, blocks, ddim_steps, stats (mean/std of
    `features`, `motion`, `offset`)."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.history, self.horizon, self.K, self.J = cfg["history"], cfg["horizon"], cfg["keypoints"], cfg["joints"]
        self.modes = tuple(cfg["modes"])
        self.motion_dim = self.horizon * self.K * 3
        cond_dim = self.history * cfg["feature_dim"] + len(self.modes)
        for k, s in cfg["stats"].items():
            self.register_buffer(f"{k}_mean", torch.as_tensor(s["mean"], dtype=torch.float32))
            self.register_buffer(f"{k}_std", torch.as_tensor(s["std"], dtype=torch.float32).clamp_min(1e-4))
        self.denoiser = Denoiser(self.motion_dim, cond_dim, cfg["width"], cfg["blocks"])
        self.inverse_dynamics = InverseDynamics(cond_dim + self.motion_dim, self.J, cfg["width"], cfg["id_blocks"])
        self.ddpm = DDPMScheduler(**SCHEDULE)
        self.ddim = DDIMScheduler(**SCHEDULE)

    # ---------------------------------------------------------------- normalization
    def norm(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return (x - getattr(self, f"{key}_mean")) / getattr(self, f"{key}_std")

    def unnorm(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return x * getattr(self, f"{key}_std") + getattr(self, f"{key}_mean")

    def condition(self, history: torch.Tensor, mode: torch.Tensor) -> torch.Tensor:
        """(B, history, F) raw step features and (B,) mode indices -> (B, cond_dim)."""
        onehot = F.one_hot(mode.long(), len(self.modes)).float()
        return torch.cat([self.norm("features", history).flatten(1), onehot], -1)

    # ---------------------------------------------------------------- training
    def losses(self, history, mode, motion, offset) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw batch -> (diffusion loss, inverse dynamics loss). motion (B, horizon, K*3) metres, offset (B, J) rad:
        joint targets minus joint positions."""
        cond = self.condition(history, mode)
        x0 = self.norm("motion", motion.flatten(1))
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.ddpm.config.num_train_timesteps, (len(x0),), device=x0.device)
        diff = F.mse_loss(self.denoiser(self.ddpm.add_noise(x0, noise, t), t, cond), noise)
        inv = F.mse_loss(self.inverse_dynamics(torch.cat([cond, x0], -1)), self.norm("offset", offset))
        return diff, inv

    # ---------------------------------------------------------------- acting
    @torch.no_grad()
    def sample(self, cond: torch.Tensor, command: torch.Tensor | None = None, alpha: float = 0.0,
               steps: int | None = None, generator: torch.Generator | None = None,
               weight: torch.Tensor | None = None) -> torch.Tensor:
        """Keypoint motions (B, horizon, K, 3) in metres. `command` (B, horizon, K, 3) metres pulls each step toward
        it with strength `alpha` (0: plain sampling, the same draws); `weight` (K,) weighs each keypoint's distance
        (a teleoperation that tracks only fingertips)."""
        sched = self.ddim
        sched.set_timesteps(steps or self.cfg["ddim_steps"])
        x = torch.randn((len(cond), self.motion_dim), generator=generator, device=cond.device)
        guided = command is not None and alpha > 0
        if guided:
            c = self.norm("motion", command.reshape(len(cond), -1))
            w = torch.ones(self.motion_dim, device=cond.device)
            if weight is not None:
                w = weight.to(cond.device).float().repeat_interleave(3).repeat(self.horizon)
        r = SCHEDULE["clip_sample_range"]
        for t in sched.timesteps:
            eps = self.denoiser(x, t.expand(len(x)), cond)
            if guided:
                # the step's prediction of the clean motion goes down the gradient of 0.5 |w (x0 - c)|^2 by alpha times
                # the step's noise variance, capped below 1 so that no step overshoots the command
                ab = sched.alphas_cumprod[t].to(x.device)
                x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-r, r)
                lam = alpha * (1 - ab) / (1 + alpha * (1 - ab))
                x0 = x0 - lam * w * (x0 - c)
                eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            x = sched.step(eps, t, x, generator=generator).prev_sample
        x = x.clamp(-r, r)
        return self.unnorm("motion", x).reshape(len(cond), self.horizon, self.K, 3)

    def inverse(self, cond: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """(B, cond_dim), (B, horizon, K, 3) metres -> (B, J) joint targets minus the joints' positions now, rad."""
        x = self.norm("motion", motion.reshape(len(cond), -1))
        return self.unnorm("offset", self.inverse_dynamics(torch.cat([cond, x], -1)))
