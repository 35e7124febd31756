"""`python -m generators.free_motion --episodes 64`: free finger motion on DexRegrasp-v0's hand, the DexGen
controller's second mode (DexterityGen trains on "free finger moving" besides its grasp-to-grasp transitions).

Each episode starts in a grasp of a train object's set and drives the joint targets through random waypoints (each
within the joint limits, `reach` rad from the last, reached by cosine interpolation over `hop` control steps),
whatever becomes of the object. Every step is labelled `free`. The episodes form one dataset in the project's format
(absolute joint targets as actions), written as they come; a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from dexenvs.cli import Count, Positive, NonNegative, check_output, run_cli
from dexenvs.executor import executor
from dexenvs.results import provenance
from dexenvs.tasks.regrasp import DexRegraspEnv
from dexenvs.trajectory import DatasetWriter, Recorder, env_args_of

ENV_ID = DexRegraspEnv.env_id


@dataclass(frozen=True)
class FreeMotionConfig:
    episodes: int = 64
    steps: int = 60
    """control steps per episode"""
    hop: int = 10
    """control steps between waypoints"""
    reach: float = 0.4
    """largest change of one joint between waypoints, rad"""
    seed: int = 0
    workers: int = 2
    out: Path = Path("runs/free_motion")

    def dataset(self) -> Path:
        return self.out / "free_motion.hdf5"


class _Worker:
    def __init__(self, cfg: FreeMotionConfig):
        self.cfg = cfg
        self.env = Recorder(gym.make(ENV_ID, control_mode="pd_joint_pos").unwrapped)
        art = self.env.unwrapped.agent.robot._objs[0]
        lim = np.concatenate([j.get_limits() for j in art.get_active_joints()])
        inv = np.argsort(self.env.unwrapped._qpos_order.cpu().numpy())
        self.low, self.high = lim[inv, 0], lim[inv, 1]

    def close(self):
        self.env.close()


def _run(w: _Worker, episode: int):
    cfg, env = w.cfg, w.env
    rng = np.random.default_rng([cfg.seed, episode])
    env.reset(seed=cfg.seed * 1_000_003 + episode)
    start = env.unwrapped.agent.controller._target_qpos[0].cpu().numpy().astype(np.float64)
    for t in range(cfg.steps):
        if t % cfg.hop == 0:
            a = start if t == 0 else nxt
            nxt = np.clip(a + rng.uniform(-cfg.reach, cfg.reach, a.shape), w.low, w.high)
            start = a
        s = 0.5 - 0.5 * np.cos(np.pi * (t % cfg.hop + 1) / cfg.hop)
        env.step(torch.as_tensor(start + s * (nxt - start), dtype=torch.float32)[None])
    return env.episode(dict(generator="free_motion", episode=episode), phases=["free"] * cfg.steps)


def build_free_motion(cfg: FreeMotionConfig, resume: bool = False, progress: bool = True) -> Path:
    from tqdm import tqdm

    cfg.out.mkdir(parents=True, exist_ok=True)
    probe = gym.make(ENV_ID, control_mode="pd_joint_pos")
    args = env_args_of(probe)
    probe.close()
    writer = DatasetWriter(cfg.dataset(), args, resume=resume)
    done = {m["provenance"]["episode"] for m in writer.meta.values()}
    todo = [e for e in range(cfg.episodes) if e not in done]
    bar = tqdm(total=cfg.episodes, initial=cfg.episodes - len(todo), desc="free motion", disable=not progress)
    try:
        for ep in executor(cfg.workers).map(_Worker, (cfg,), _run, todo):
            writer.add(ep)
            bar.update(1)
    finally:
        bar.close()
        writer.attrs["free_motion"] = json.dumps(provenance(dict(episodes=cfg.episodes, steps=cfg.steps, hop=cfg.hop,
                                                          reach=cfg.reach, seed=cfg.seed)))
        writer.close()
    return cfg.dataset()


@dataclass
class Args:
    episodes: Count = 64
    steps: Count = 60
    hop: Count = 10
    reach: Positive = 0.4
    seed: NonNegative = 0
    workers: Count = 2
    out: Path = Path("runs/free_motion")
    resume: bool = False
    """add the missing episodes to an existing run"""

    def config(self) -> FreeMotionConfig:
        return FreeMotionConfig(self.episodes, self.steps, self.hop, self.reach, self.seed, self.workers, self.out)

    def check(self) -> None:
        check_output("out", self.config().dataset(), self)


def main(args: Args) -> Path:
    path = build_free_motion(args.config(), resume=args.resume)
    print(f"[free_motion] wrote {args.episodes} episodes to {path}")
    return path


if __name__ == "__main__":
    run_cli(main, Args)
