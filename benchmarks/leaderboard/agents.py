"""What a leaderboard entry can be, and the player that runs one episode of it.

- a checkpoint `agents.evaluate` takes (`runs/grasp_dp/checkpoint.pt`), a residual on top with `--residual`;
- `expert`: each task's scripted expert (privileged: it reads the sim's state);
- `module:factory`: any policy. `factory(env_id)` returns an object with `reset(seed)` and `act(obs) -> action` for the
  env `gym.make(env_id, obs_mode=...)` returns (numpy observations, one env); it may set `obs_mode` (default
  "state_dict") and `reset_options` (the handover's giver per episode, default the expert's). See `example_agent.py`.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from dexenvs.cli import UsageError
from dexenvs.tasks import get_task, task_of_env


@dataclass(frozen=True)
class AgentSpec:
    spec: str
    residual: str | None = None

    @property
    def kind(self) -> str:
        if self.spec == "expert":
            return "expert"
        if ":" in self.spec and not Path(self.spec).exists():
            return "factory"
        return "checkpoint"

    def check(self) -> None:
        if self.kind == "checkpoint" and not Path(self.spec).is_file():
            raise UsageError("agent", self.spec, "no such checkpoint; give a checkpoint path, expert, or "
                                                 "module:factory")
        if self.kind == "factory":
            module, _, name = self.spec.partition(":")
            try:
                mod = importlib.import_module(module)
            except ImportError as e:
                raise UsageError("agent", self.spec, f"cannot import {module!r}: {e}") from None
            if not callable(getattr(mod, name, None)):
                raise UsageError("agent", self.spec, f"{module} has no callable {name!r}")
        if self.residual and self.kind != "checkpoint":
            raise UsageError("residual", self.residual, "a residual goes on a checkpoint agent")

    def tasks(self) -> list[str] | None:
        """The tasks this agent can play (a checkpoint: the one it was trained on); None: any."""
        if self.kind == "checkpoint":
            from agents.checkpoint import read_checkpoint

            return [task_of_env(read_checkpoint(self.spec)["config"]["env_args"]["env_name"]).name]
        return None

    def file_hash(self) -> str:
        """sha256 of what defines the agent: the checkpoint (and residual), the expert's or factory's source file."""
        h = hashlib.sha256()
        if self.kind == "checkpoint":
            paths = [Path(self.spec)] + (sorted(p for p in Path(self.residual).rglob("*") if p.is_file())
                                         if self.residual else [])
        elif self.kind == "expert":
            import dexenvs.experts

            paths = sorted(Path(dexenvs.experts.__file__).parent.glob("*.py"))
        else:
            paths = [Path(inspect.getfile(importlib.import_module(self.spec.partition(":")[0])))]
        for p in paths:
            h.update(p.read_bytes())
        return h.hexdigest()[:16]


class CellPlayer:
    """One worker's env and agent for one task and split: plays jobs (seed, episode, scenario)."""

    def __init__(self, agent: AgentSpec, task: str, split: str, video_dir: str | None = None):
        self.spec, self.kind = get_task(task), agent.kind
        self.video_dir = Path(video_dir) if video_dir else None
        render = "rgb_array" if video_dir else None
        if agent.kind == "checkpoint":
            from agents.evaluate import EpisodePlayer

            self.player = EpisodePlayer(agent.spec, env_id=self.spec.env_id, split=split, residual=agent.residual)
            if video_dir:  # the same env, able to render
                from agents.evaluate import make_eval_env

                self.player.env.close()
                self.player.env = make_eval_env(self.player.policy.cfg, self.spec.env_id, split, video=True)
            self.env = self.player.env
        elif agent.kind == "expert":
            self.env = gym.make(self.spec.env_id, split=split, render_mode=render).unwrapped
            self.expert = self.spec.expert(self.env)
        else:
            module, _, name = agent.spec.partition(":")
            self.policy = getattr(importlib.import_module(module), name)(self.spec.env_id)
            self.env = gym.make(self.spec.env_id, split=split, render_mode=render,
                                obs_mode=getattr(self.policy, "obs_mode", "state_dict"))

    def play(self, job: tuple) -> dict:
        s, i, scenario = job
        seed = s * 100_000 + i
        frames = [] if self.video_dir is not None and s == 0 and i == 0 else None
        if self.kind == "expert":
            out = self._expert_episode(seed, scenario, frames)
        else:
            from agents.evaluate import run_episode

            policy = self.player.policy if self.kind == "checkpoint" else self.policy
            demonstrated = (None if self.kind == "checkpoint" else
                            getattr(self.policy, "reset_options", None) or [self.spec.expert_options(k) for k in (0, 1)])
            out = run_episode(self.env, policy, seed, frames, scenario, reset_options=demonstrated)
        if frames:
            _save_video(frames, self.video_dir / "episode.mp4")
        return dict(seed=s, episode=i, scenario=scenario, success=bool(out["success"]), steps=int(out["steps"]))

    def _expert_episode(self, seed: int, scenario: str, frames: list | None) -> dict:
        env, expert = self.env, self.expert
        env.reset(seed=seed, options=dict(self.spec.expert_options(seed), scenario=scenario))
        expert.reset()
        success = False
        for t in range(expert.horizon):
            if frames is not None:
                frames.append(_frame(env))
            action, _ = expert.act()
            _, _, _, _, info = env.step(action)
            success = bool(info["success"][0])
            if success or bool(info["fail"][0]):
                break
        if frames is not None:
            frames.append(_frame(env))
        return dict(success=success, steps=t + 1)

    def close(self) -> None:
        self.env.close()


def _frame(env) -> np.ndarray:
    f = env.render()
    f = f.cpu().numpy() if isinstance(f, torch.Tensor) else np.asarray(f)
    return f[0] if f.ndim == 4 else f


def _save_video(frames: list, path: Path, size: int = 192) -> None:
    """A small mp4 (the page embeds one per cell), written atomically."""
    import imageio.v2 as imageio

    from dexenvs.results import atomic_write

    t = torch.as_tensor(np.stack(frames)).permute(0, 3, 1, 2).float()
    t = torch.nn.functional.interpolate(t, size=(size, size), mode="area")
    small = t.permute(0, 2, 3, 1).round().clamp(0, 255).to(torch.uint8).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        imageio.mimsave(tmp, list(small), fps=20, format="FFMPEG", codec="libx264", quality=5)
