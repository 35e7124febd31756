"""`Policy`: the one interface every consumer acts through (evaluation, residual RL, hardware deployment).

    policy = load_policy("runs/grasp_dp/checkpoint.pt")
    policy.reset(seed=0)
    action = policy.act(obs)      # obs from a dexenvs env (nested ManiSkill dict or flat keys), batched (B, ...)

It keeps the last `obs_horizon` observations and a queue of planned actions per env: a new chunk is predicted when an
env's queue is empty, and its first `action_steps` actions are executed one per call. Sampling noise comes from the
policy's own generator, so a policy reset with the same seed acts identically. A policy trained in the
embodiment-agnostic representation (`agents.embodiment`, co-training on human data) reads and acts through its
`RelativeFrontend`: the env's observations and actions stay the ones every other policy uses. Batch-1 diffusion sampling runs the U-Net
as a TorchScript trace (optimized for inference): about half the eager latency on this CPU.
"""

from __future__ import annotations

import warnings

import torch

from agents.embodiment import RAW_KEYS, REPRESENTATION, RelativeFrontend
from agents.models import ChunkModel
from dexenvs.trajectory import flatten_obs


class Policy:
    def __init__(self, model: ChunkModel, action_steps: int | None = None, ddim_steps: int | None = None,
                 sampler: str = "ddim", seed: int = 0, jit: bool = True):
        self.model = model.eval()
        self.cfg = model.cfg
        self.action_steps = action_steps or self.cfg["action_steps"]
        if not 1 <= self.action_steps <= self.cfg["action_horizon"]:
            raise ValueError(f"action_steps must be in 1..{self.cfg['action_horizon']} (the predicted chunk), "
                             f"got {self.action_steps}")
        self.ddim_steps, self.sampler, self.jit = ddim_steps, sampler, jit
        self.device = next(model.parameters()).device
        self._traced: dict[int, torch.jit.ScriptModule] = {}
        self.frontend = RelativeFrontend() if self.cfg.get("representation") == REPRESENTATION else None
        self.obs_keys = list(RAW_KEYS) if self.frontend else self.model.obs_keys
        self.reset(seed)

    def reset(self, seed: int | None = None, env_idx=None) -> None:
        """Forget history and planned actions (of all envs, or of `env_idx`); reseed the sampler if `seed` is given."""
        if seed is not None:
            self.generator = torch.Generator(self.device).manual_seed(int(seed))
        if self.frontend is not None:
            self.frontend.reset(env_idx)
        if env_idx is None:
            self.history, self.queue, self.pos = None, None, None
        elif self.pos is not None:
            self.pos[torch.as_tensor(env_idx)] = self.action_steps  # replan these at their next step
            self._fresh[torch.as_tensor(env_idx)] = True

    def _flat(self, obs) -> dict[str, torch.Tensor]:
        if isinstance(obs, dict) and any(isinstance(v, dict) for v in obs.values()):
            obs = flatten_obs(obs, keep_batch=True)
        if not isinstance(obs, dict):
            raise TypeError("the policy needs dict observations: make the env with obs_mode='state_dict' (state "
                            "policies) or 'rgb' (image policies)")
        missing = [k for k in self.obs_keys if k not in obs]
        if missing:
            raise KeyError(f"observation keys {missing} missing; the policy uses {self.obs_keys}, got {sorted(obs)}")
        out = {}
        self._unbatched = False
        for k in self.obs_keys:
            v = obs[k]
            v = torch.as_tensor(v, device=self.device)
            if v.ndim <= (3 if k in self.cfg["images"] else 1):  # one env's obs (gym.make's single-env API)
                v, self._unbatched = v[None], True
            out[k] = v
        return out

    def act(self, obs):
        """One action per env: (B, action_dim) torch for batched obs, (action_dim,) numpy for one env's numpy obs
        (what `gym.make(...)`'s single-env API takes)."""
        flat = self._flat(obs)
        if self.frontend is None:
            action = self._act(flat)
        else:
            action = self.frontend.command(self._act(self.frontend.observe(flat)))
        return action[0].cpu().numpy() if self._unbatched else action

    def _act(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        b = len(next(iter(obs.values())))
        if self.history is None or len(self.pos) != b:
            self.history = {k: v[:, None].repeat_interleave(self.cfg["obs_horizon"], 1) for k, v in obs.items()}
            self.pos = torch.full((b,), self.action_steps, dtype=torch.long)
            self._fresh = torch.zeros(b, dtype=torch.bool)
            self.queue = None
        else:
            for k, v in obs.items():  # envs reset since their last step start a fresh history
                h = torch.cat([self.history[k][:, 1:], v[:, None]], 1)
                h[self._fresh] = v[self._fresh][:, None].expand_as(h[self._fresh])
                self.history[k] = h
            self._fresh[:] = False
        need = self.pos >= self.action_steps
        if need.any():
            chunk = self._predict(self.history)[:, : self.action_steps]
            self.queue = chunk if self.queue is None else torch.where(need[:, None, None], chunk, self.queue)
            self.pos[need] = 0
        action = self.queue[torch.arange(b), self.pos]
        self.pos += 1
        return action

    @torch.no_grad()
    def predict_chunk(self, obs) -> torch.Tensor:
        """A whole action chunk (B, action_horizon, A) from an obs history {key: (B, obs_horizon, ...)}, no queue."""
        return self._predict({k: torch.as_tensor(v, device=self.device) for k, v in obs.items()})

    def _predict(self, history: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.model.algo != "diffusion":
            return self.model.sample(history, self.generator)
        return self.model.sample(history, self.generator, steps=self.ddim_steps, sampler=self.sampler,
                                 net=self._net(len(next(iter(history.values())))))

    def _net(self, batch: int):
        if not self.jit:
            return None
        if batch not in self._traced:
            net, cfg = self.model.net, self.cfg
            x = torch.zeros(batch, cfg["action_horizon"], cfg["action_dim"], device=self.device)
            t = torch.zeros(batch, dtype=torch.long, device=self.device)
            c = torch.zeros(batch, self.model.encoder.feature_dim, device=self.device)
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                self._traced[batch] = torch.jit.optimize_for_inference(torch.jit.trace(net.eval(), (x, t, c)))
        return self._traced[batch]
