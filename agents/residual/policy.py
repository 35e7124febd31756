"""The combined policy base + alpha * residual (DexFlyWheel sec. 4.3): what the residual sees, how its correction is
applied, and `load_residual`, which turns a trained residual directory into a policy with `Policy`'s interface.
Training is in `agents.residual.train`."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from agents.checkpoint import load_model
from agents.models import ChunkModel
from agents.policy import Policy
from dexenvs.trajectory import flatten_obs

OBS_CLIP = 5.0  # normalized observations outside the dataset's range (velocities, unseen objects) are clipped here


def residual_obs(model: ChunkModel, obs: dict[str, torch.Tensor], base_action: torch.Tensor) -> torch.Tensor:
    """(B, D) residual input: the base's low-dim obs keys and its action, normalized as the base sees them."""
    parts = [model.normalizer.normalize(k, obs[k].reshape(len(base_action), -1)) for k in sorted(model.cfg["low_dim"])]
    parts.append(model.normalizer.normalize("actions", base_action))
    return torch.cat(parts, -1).clamp(-OBS_CLIP, OBS_CLIP)


def combine(model: ChunkModel, base_action: torch.Tensor, delta: torch.Tensor, alpha: float) -> torch.Tensor:
    """Base action + alpha * delta, delta in the base's normalized action units ([-1, 1] spans the dataset's range).
    Added in the env's units, so alpha = 0 returns the base action bit for bit."""
    half_span = model.normalizer.actions__span / 2
    return base_action + (alpha * delta.to(base_action.dtype)) * half_span


def flat_torch(obs) -> dict[str, torch.Tensor]:
    if isinstance(obs, dict) and any(isinstance(v, dict) for v in obs.values()):
        obs = flatten_obs(obs, keep_batch=True)
    return {k: torch.as_tensor(v) for k, v in obs.items()}


class ResidualPolicy:
    """The combined policy base + alpha * residual, acting through `Policy`'s interface."""

    def __init__(self, base: Policy, actor, alpha: float):
        self.base, self.actor, self.alpha = base, actor, alpha
        self.model, self.cfg = base.model, base.cfg

    def reset(self, seed: int | None = None, env_idx=None) -> None:
        self.base.reset(seed, env_idx)

    def act(self, obs):
        flat = flat_torch(obs)
        base_action = self.base.act(flat)
        unbatched = self.base._unbatched
        if unbatched:
            flat = {k: v[None] for k, v in flat.items()}
            base_action = torch.as_tensor(base_action)[None]
        with torch.no_grad():
            x = residual_obs(self.model, flat, base_action).numpy()
            delta, _ = self.actor.predict(x, deterministic=True)
            action = combine(self.model, base_action, torch.as_tensor(delta, dtype=torch.float32), self.alpha)
        return action[0].numpy() if unbatched else action


def rl_algorithms() -> dict:
    """The residual's RL algorithms, by name: stable-baselines3's SAC (Policy Decorator's choice) and PPO (ResiP's)."""
    from stable_baselines3 import PPO, SAC

    return {"sac": SAC, "ppo": PPO}


def load_residual(path: str | Path, base: Policy | None = None, alpha: float | None = None) -> ResidualPolicy:
    """A trained residual directory (`residual.json` + `residual.zip`) -> the combined policy, at the alpha chosen on
    validation (`alpha` overrides it). The base policy is the checkpoint the residual was trained on unless `base` is
    given."""
    path = Path(path)
    cfg_path = path / "residual.json"
    if not cfg_path.exists():
        raise FileNotFoundError(f"{path} holds no trained residual (no residual.json); train one with "
                                f"`python -m agents.residual --ckpt <base checkpoint> --out {path}`")
    cfg = json.loads(cfg_path.read_text())
    actor = rl_algorithms()[cfg["algo"]].load(path / "residual.zip", device="cpu")
    base = base or Policy(load_model(cfg["base_ckpt"]))
    return ResidualPolicy(base, actor, cfg["alpha"] if alpha is None else alpha)
