"""PPO from scratch on a dexsuite env (stable-baselines3), the RL baseline of DexRegrasp-v0:

    python -m agents.ppo --env DexRegrasp-v0 --minutes 120 --workers 2 --out runs/ppo_regrasp

One env per worker process (ManiSkill's CPU backend runs one scene per process), train split scenarios, the
normalized dense reward. Every finished training episode is logged to `metrics.jsonl` (env steps so far, success,
consecutive successes where the env counts them); `curve.png` is the success rate against env steps in windows of
episodes, each with its 95% interval. The model is saved every `--save-every` steps and at the end (`ppo.zip`);
`--resume` continues it, appending to the same log, after an interruption.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import dexenvs  # noqa: F401  (registers the envs)
from dexenvs.cli import Count, NonNegative, Positive, UsageError, check_output, run_cli
from dexenvs.rates import format_rate, wilson_interval
from dexenvs.results import append_jsonl, atomic_write, provenance, read_jsonl, save_json
from dexenvs.tasks import import_tasks, task_modules


class EpisodeStats(gym.Wrapper):
    """Puts the finished episode's success and failure (and consecutive successes and the object's distance to its goal,
    where the env reports them) in the last info: while the success rate is still zero, drops and distance show whether
    the policy is learning anything."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info["episode_success"] = bool(info.get("success", False))
            info["episode_fail"] = bool(info.get("fail", False))
            if "consecutive_successes" in info:
                info["episode_consecutive"] = int(info["consecutive_successes"])
            if "pos_err" in info:
                info["episode_pos_err"] = float(info["pos_err"])
        return obs, reward, terminated, truncated, info


def _make(env_id: str, env_kwargs: dict, seed: int):
    tasks = task_modules()

    def thunk():
        torch.set_num_threads(1)
        import_tasks(tasks)
        env = EpisodeStats(gym.make(env_id, reward_mode="normalized_dense", **env_kwargs))
        env.reset(seed=seed)
        return env
    return thunk


@dataclass(frozen=True)
class PPOConfig:
    timesteps: int = 10_000_000
    """an upper bound; `minutes` usually ends training first"""
    minutes: float | None = None
    n_steps: int = 512
    """steps per worker per update"""
    batch_size: int = 256
    n_epochs: int = 5
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    log_std_init: float = -3.0
    """small initial exploration noise: random finger jerks drop the object from the grasp it starts in (settled by
    benchmarks.studies.ppo_exploration)"""
    net_arch: tuple[int, ...] = (256, 256)
    save_every: int = 50_000


def train_ppo(env_id: str, out: Path, cfg: PPOConfig = PPOConfig(), env_kwargs: dict | None = None, workers: int = 2,
              seed: int = 0, resume: bool = False, progress: bool = True) -> dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    env_kwargs = dict(env_kwargs or {})
    out.mkdir(parents=True, exist_ok=True)
    thunks = [_make(env_id, env_kwargs, seed + 1000 * i) for i in range(workers)]
    venv = SubprocVecEnv(thunks, start_method="spawn") if workers > 1 else DummyVecEnv(thunks)
    model_path, metrics_path = out / "ppo.zip", out / "metrics.jsonl"
    if resume and model_path.exists():
        model = PPO.load(model_path, env=venv, device="cpu")
        episodes = read_jsonl(metrics_path) if metrics_path.exists() else []
    else:
        model = PPO("MlpPolicy", venv, learning_rate=cfg.learning_rate, n_steps=cfg.n_steps, batch_size=cfg.batch_size,
                    n_epochs=cfg.n_epochs, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda, clip_range=cfg.clip_range,
                    ent_coef=cfg.ent_coef, policy_kwargs=dict(net_arch=list(cfg.net_arch), log_std_init=cfg.log_std_init),
                    seed=seed, device="cpu", verbose=0)
        episodes = []
        metrics_path.unlink(missing_ok=True)
    settings = dict(env_id=env_id, env_kwargs=env_kwargs, config=asdict(cfg), workers=workers, seed=seed)
    t0 = time.perf_counter()
    start_steps = int(model.num_timesteps)

    def save():
        with atomic_write(model_path) as tmp:
            model.save(tmp)

    class Log(BaseCallback):
        def _on_training_start(self):
            from tqdm import tqdm

            self.bar = tqdm(desc=f"ppo {env_id}", unit="step", disable=not progress, initial=start_steps)
            self.last_save = self.num_timesteps

        def _on_step(self) -> bool:
            self.bar.update(workers)
            for info, done in zip(self.locals["infos"], self.locals["dones"]):
                if done and "episode_success" in info:
                    row = dict(step=int(self.num_timesteps), success=info["episode_success"],
                               fail=info["episode_fail"], consecutive=info.get("episode_consecutive"),
                               pos_err=info.get("episode_pos_err"))
                    episodes.append(row)
                    append_jsonl(metrics_path, row)
                    recent = episodes[-50:]
                    self.bar.set_postfix(success=f"{np.mean([e['success'] for e in recent]):.0%}")
            if self.num_timesteps - self.last_save >= cfg.save_every:
                save()
                self.last_save = self.num_timesteps
            return cfg.minutes is None or time.perf_counter() - t0 < 60 * cfg.minutes

        def _on_training_end(self):
            self.bar.close()

    model.learn(cfg.timesteps - start_steps if cfg.timesteps > start_steps else 0, callback=Log(),
                reset_num_timesteps=False)
    save()
    venv.close()
    seconds = time.perf_counter() - t0
    last = episodes[-100:]
    summary = dict(settings, timesteps=int(model.num_timesteps), seconds=round(seconds, 1),
                   steps_per_second=round((model.num_timesteps - start_steps) / max(seconds, 1e-9), 1),
                   episodes=len(episodes),
                   last_success=format_rate(sum(e["success"] for e in last), len(last)),
                   last_fail=format_rate(sum(bool(e.get("fail")) for e in last), len(last)),
                   last_consecutive=(float(np.mean([e["consecutive"] for e in last]))
                                     if last and last[0].get("consecutive") is not None else None),
                   provenance=provenance(settings))
    save_json(out / "ppo.json", summary)
    plot_curve(episodes, out / "curve.png", title=f"PPO on {env_id}")
    return summary


def success_curve(episodes: list[dict], window: int = 50, key: str = "success") -> list[dict]:
    """Rate of `key` (success or fail) in consecutive windows of `window` training episodes, at the env step each
    window ends."""
    rows = []
    for s in range(0, len(episodes) - window + 1, window):
        w = episodes[s: s + window]
        k = sum(bool(e.get(key)) for e in w)
        lo, hi = wilson_interval(k, window)
        rows.append(dict(step=w[-1]["step"], rate=k / window, lo=lo, hi=hi, n=window))
    return rows


def plot_curve(episodes: list[dict], path: Path, title: str, reference: dict[str, float] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = max(10, min(50, len(episodes) // 10 or 10))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, label in (("success", "success"), ("fail", "failure (drop)")):
        rows = success_curve(episodes, window=window, key=key)
        if rows:
            x = [r["step"] for r in rows]
            ax.plot(x, [100 * r["rate"] for r in rows], label=f"PPO {label} (windows of {window} episodes)")
            ax.fill_between(x, [100 * r["lo"] for r in rows], [100 * r["hi"] for r in rows], alpha=0.25)
    for name, rate in (reference or {}).items():
        ax.axhline(100 * rate, ls="--", color="gray")
        ax.text(0, 100 * rate + 1, name, color="gray", fontsize=8)
    ax.set_xlabel("env steps")
    ax.set_ylabel("% of training episodes")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


@dataclass
class Args:
    env: str = "DexRegrasp-v0"
    out: Path = Path("runs/ppo_regrasp")
    minutes: Positive | None = None
    """stop after this much wall time"""
    timesteps: Count = 10_000_000
    workers: Count = 2
    seed: NonNegative = 0
    resume: bool = False
    """continue ppo.zip in --out, appending to its log"""
    overwrite: bool = False
    env_kwargs: str = "{}"
    """JSON of extra gym.make arguments, e.g. '{"goals_per_episode": 1}'"""

    def kwargs(self) -> dict:
        try:
            value = json.loads(self.env_kwargs)
        except json.JSONDecodeError as e:
            raise UsageError("env-kwargs", self.env_kwargs, f"not JSON: {e}") from None
        if not isinstance(value, dict):
            raise UsageError("env-kwargs", self.env_kwargs, "must be a JSON object of gym.make arguments")
        return value

    def check(self) -> None:
        if self.env not in gym.registry:
            raise UsageError("env", self.env, f"unknown env; dexsuite envs: {list(dexenvs.TASK_IDS)}")
        self.kwargs()
        check_output("out", self.out / "ppo.zip", self)


def main(args: Args) -> dict:
    cfg = PPOConfig(timesteps=args.timesteps, minutes=args.minutes)
    summary = train_ppo(args.env, args.out, cfg, args.kwargs(), args.workers, args.seed, args.resume)
    print(f"[ppo] {args.env}: {summary['timesteps']} steps in {summary['seconds']:.0f} s "
          f"({summary['steps_per_second']:.0f}/s), last 100 training episodes {summary['last_success']}; "
          f"wrote {args.out / 'ppo.zip'} and {args.out / 'curve.png'}")
    return summary


if __name__ == "__main__":
    run_cli(main, Args)
