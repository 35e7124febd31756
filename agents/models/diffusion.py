"""Diffusion policy (Chi et al. 2023; DexFlyWheel's base policy): a conditional 1D temporal U-Net denoises a chunk of
`action_horizon` actions conditioned on the encoded observation history. Trained with DDPM (100 steps, squared-cosine
schedule, epsilon prediction, clipped samples, as diffusion_policy); sampled with DDIM in `ddim_steps` steps (or the
full DDPM chain). Schedulers are diffusers'."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler

from agents.models.base import ChunkModel
from agents.models.unet1d import ConditionalUnet1D

SCHEDULE = dict(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", clip_sample=True, prediction_type="epsilon")


class DiffusionModel(ChunkModel):
    algo = "diffusion"

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        self.net = ConditionalUnet1D(cfg["action_dim"], self.encoder.feature_dim, tuple(cfg["down_dims"]))
        self.ddpm = DDPMScheduler(**SCHEDULE)
        self.ddim = DDIMScheduler(**SCHEDULE)

    def loss(self, obs, actions):
        cond = self.encoder(self.normalize_obs(obs))
        x0 = self.normalizer.normalize("actions", actions)
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.ddpm.config.num_train_timesteps, (len(x0),), device=x0.device)
        return F.mse_loss(self.net(self.ddpm.add_noise(x0, noise, t), t, cond), noise)

    @torch.no_grad()
    def sample(self, obs, generator=None, steps: int | None = None, sampler: str = "ddim", net=None):
        """`net`: a stand-in for self.net with the same call (the policy passes a traced copy for speed)."""
        if sampler not in ("ddim", "ddpm"):
            raise ValueError(f"unknown sampler {sampler!r}; valid: ['ddim', 'ddpm']")
        net = net or self.net
        cond = self.encoder(self.normalize_obs(obs))
        sched = self.ddim if sampler == "ddim" else self.ddpm
        sched.set_timesteps(steps or (self.cfg["ddim_steps"] if sampler == "ddim" else SCHEDULE["num_train_timesteps"]))
        x = torch.randn((len(cond), self.cfg["action_horizon"], self.cfg["action_dim"]), generator=generator,
                        device=cond.device)
        for t in sched.timesteps:
            eps = net(x, t.expand(len(x)), cond)
            x = sched.step(eps, t, x, generator=generator).prev_sample
        return self.normalizer.unnormalize("actions", x.clamp(-1, 1))
