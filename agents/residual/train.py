"""Residual RL on a frozen base policy (DexFlyWheel sec. 4.3, after Policy Decorator and ResiP):

    python -m agents.residual --ckpt runs/grasp_dp/checkpoint.pt [--objects can_0 can_1 | --scenarios S ...] [--algo sac|ppo]
        [--timesteps 30000] [--alpha 0.1] --out runs/grasp_res

The residual sees the object state and proprioception (the base policy's low-dimensional observation keys, normalized
by the base's own dataset statistics) and the base action it is about to correct, and outputs a correction in the
base's normalized action units: a~ = a + alpha * delta, per step of the base's action chunk. It is trained by
stable-baselines3 (SAC or PPO) from the task's normalized dense reward with the progressive exploration schedule: at
each step the correction is applied with probability epsilon, and epsilon rises linearly from 0 to 1 over the first
`--ramp` fraction of training, so early rollouts are the base policy's and the residual takes over as it learns.

After training, the combined policy plays `--val-episodes` validation episodes (its training distribution, seeds no
test set uses) at 0, 1/4, 1/2 and 1 x alpha, and the residual keeps the alpha that succeeds most among those that beat
the base (alpha 0) by more than one standard error, the smallest on a tie, else 0 (`select_alpha`): a CPU budget of
SAC often leaves a residual that lowers a strong base, and alpha 0 then gives the base back instead of handing that
loss to the rollouts and the evaluation.

Episodes do not end at success (ManiSkill's RL convention: a success that ended the episode would forfeit the reward
of staying successful); they end at failure or the time limit. `ResidualPolicy` is the combined policy with the same
`reset` / `act` interface as `agents.policy.Policy`; with alpha = 0 it acts exactly as its base.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal, Sequence

import gymnasium as gym
import numpy as np
import torch

import dexenvs  # noqa: F401  (registers the envs)
from agents.checkpoint import load_model, read_checkpoint
from agents.evaluate import evaluate
from agents.policy import Policy
from agents.residual.policy import OBS_CLIP, combine, flat_torch, residual_obs, rl_algorithms
from dexenvs.cli import AtLeast, Count, Fraction, NonNegative, Positive, UsageError
from dexenvs.cli import validate as check_config
from dexenvs.rates import format_rate
from dexenvs.results import append_jsonl, atomic_write, provenance, save_json, save_text
from dexenvs.scenarios import Scenario
from dexenvs.tasks import get_task, import_tasks, task_modules, task_of_env

class EpsilonSchedule:
    """Probability of applying the residual at global step t: linear from 0 to 1 over `ramp_steps`, then 1."""

    def __init__(self, ramp_steps: int):
        if ramp_steps < 0:
            raise ValueError(f"ramp_steps must be >= 0, got {ramp_steps}")
        self.ramp_steps = ramp_steps

    def __call__(self, step: int) -> float:
        return 1.0 if self.ramp_steps == 0 else float(min(1.0, max(0, step) / self.ramp_steps))


class ResidualEnv(gym.Env):
    """One sim env with the frozen base policy inside, as the residual's RL environment (what SB3 trains on)."""

    def __init__(self, base_ckpt: str, env_id: str, objects: list[str], alpha: float, ramp_steps: int,
                 n_envs: int = 1, seed: int = 0, scenarios: list[str] | None = None):
        self.model = load_model(base_ckpt)
        self.base = Policy(self.model, seed=seed)
        kw = dict(self.model.cfg["env_args"]["env_kwargs"])
        kw.update(obs_mode="state_dict", reward_mode="normalized_dense")
        wrapped = gym.make(env_id, **kw)
        self.max_steps = wrapped.spec.max_episode_steps
        self.env = u = wrapped.unwrapped  # batched torch (one sub-env), as the GPU backend would give it
        self.spec = get_task(u.task_name)
        self.task = u.task_name
        self.space = u.scenario_space()
        bad = [o for o in objects if o not in self.space.train_objects + self.space.test_objects]
        if bad:
            raise ValueError(f"objects {bad} are not {self.task} objects; valid: {self.space.train_objects}")
        self.scenarios = [self.space.validate(Scenario.parse(s)) for s in scenarios or []]
        self.objects, self.alpha, self.n_envs = list(objects), alpha, n_envs
        self.schedule = EpsilonSchedule(ramp_steps)
        self.rng = np.random.default_rng(seed)
        self.action_low = torch.as_tensor(u.single_action_space.low)
        self.action_high = torch.as_tensor(u.single_action_space.high)
        a_dim = self.model.cfg["action_dim"]
        obs_dim = sum(self.model.cfg["low_dim"].values()) + a_dim
        self.observation_space = gym.spaces.Box(-OBS_CLIP, OBS_CLIP, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (a_dim,), np.float32)
        self.local_steps = 0

    @property
    def epsilon(self) -> float:
        return self.schedule(self.local_steps * self.n_envs)  # every env steps at the same pace

    def _observe(self, obs) -> np.ndarray:
        self._obs = flat_torch(obs)
        with torch.no_grad():
            self._base_action = self.base.act(self._obs)
            return residual_obs(self.model, self._obs, self._base_action)[0].numpy().astype(np.float32)

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        s = self.space
        scenario = (self.scenarios[self.rng.integers(len(self.scenarios))] if self.scenarios else
                    draw_scenario(s, self.objects, self.rng))
        reset_seed = int(self.rng.integers(2**31))
        options = self.spec.episode_options(reset_seed, self.model.cfg.get("reset_options"))
        obs, info = self.env.reset(seed=reset_seed, options=dict(options, scenario=str(scenario)))
        self.base.reset(seed=reset_seed)
        self.t, self.succeeded, self.applied = 0, False, 0
        return self._observe(obs), dict(scenario=str(scenario))

    def step(self, action):
        apply = self.rng.random() < self.epsilon
        a = self._base_action
        if apply:
            delta = torch.as_tensor(np.asarray(action), dtype=torch.float32)[None]
            a = combine(self.model, a, delta, self.alpha)
        a = torch.minimum(torch.maximum(a, self.action_low), self.action_high)
        obs, reward, _, _, info = self.env.step(a)
        self.local_steps += 1
        self.t += 1
        self.applied += int(apply)
        self.succeeded |= bool(info["success"][0])
        terminated = bool(info["fail"][0])
        truncated = self.t >= self.max_steps and not terminated
        out = dict(success=bool(info["success"][0]), residual_applied=apply)
        if terminated or truncated:
            out.update(episode_success=self.succeeded, residual_fraction=self.applied / self.t, epsilon=self.epsilon,
                       is_success=self.succeeded)
        return self._observe(obs), float(reward[0]), terminated, truncated, out

    def close(self):
        self.env.close()


# ------------------------------------------------------------------------------------------------ choosing alpha
VAL_FIRST_SEED = 1000  # evaluation seeds from here on: episodes no test set (seeds 0, 1, ...) plays


def draw_scenario(space, objects: list[str], rng: np.random.Generator) -> Scenario:
    """One of `objects` in a train environment and pose: the residual's training distribution without --scenarios."""
    return Scenario(str(rng.choice(objects)), str(rng.choice(space.train_envs)), int(rng.choice(space.train_poses)))


def validation_scenarios(space, objects: list[str], n: int, seed: int) -> list[str]:
    """n scenarios from the residual's own training distribution, drawn apart from its training episodes."""
    rng = np.random.default_rng([seed, VAL_FIRST_SEED])
    return [str(draw_scenario(space, objects, rng)) for _ in range(n)]


def select_alpha(rates: dict[float, float], episodes: int) -> float:
    """The alpha with the highest validation success, ties to the smallest, among those that beat the base (alpha 0)
    by more than one standard error of the difference of two success rates over `episodes` each; if none does, 0
    (the combined policy is the base). The margin is the validation's own noise: a residual ahead of its base by less
    than that was kept once and lost on the held-out set what it seemed to win (docs/notebook.md). Without alpha 0
    among `rates`, the best alpha."""
    if 0.0 in rates:
        p0 = rates[0.0]
        rates = {a: p for a, p in rates.items()
                 if a > 0 and p - p0 > math.sqrt((p * (1 - p) + p0 * (1 - p0)) / max(episodes, 1))}
        if not rates:
            return 0.0
    best = max(rates.values())
    return min(a for a, r in rates.items() if r == best)


def validate(ckpt: Path, residual_dir: Path, env_id: str, objects: list[str], alphas: list[float], episodes: int,
             workers: int, seed: int, scenarios: list[str] | None = None) -> dict[float, float]:
    """Success of the combined policy at each alpha on the same `episodes` validation episodes (alpha 0: the base), in
    `scenarios` in turn or, without them, in scenarios drawn from `objects` x train environments x train poses."""
    scenarios = scenarios or validation_scenarios(task_of_env(env_id).scenario_space(), objects, episodes, seed)
    rates = {}
    for a in alphas:
        s = evaluate(ckpt, env_id, "train", 1, episodes, workers, residual_dir if a else None, scenarios=scenarios,
                     residual_alpha=a if a else None, first_seed=VAL_FIRST_SEED + seed)
        rates[a] = s["success_mean"]
    return rates


# ---------------------------------------------------------------------------------------------------------- training
@dataclass
class ResidualConfig:
    """How the residual is trained and validated (the flywheel nests this as `--residual.*`)."""

    algo: Literal["sac", "ppo"] = "sac"
    timesteps: Count = 30_000
    """env steps of RL; 15,000 against 30,000 on the pour's bases kept 30,000 (docs/notebook.md)"""
    alpha: Positive = 0.1
    ramp: Fraction = 0.5
    """epsilon reaches 1 after this fraction of the timesteps"""
    val_episodes: NonNegative = 40
    """after training, the combined policy plays this many episodes of its training distribution (seeds no test set
    uses) at each of `val_alphas`, and keeps the alpha that succeeds most among those ahead of the base by more than one
    standard error (ties: the smallest; none: 0, which switches the residual off). 0: keep `alpha` untested"""
    val_alphas: tuple[Annotated[float, AtLeast(0)], ...] = (0.0, 0.25, 0.5, 1.0)
    """the alphas tried, as fractions of `alpha`"""

    def check(self) -> None:
        if self.algo not in rl_algorithms():
            raise UsageError("algo", self.algo, f"valid: {sorted(rl_algorithms())}")
        if not self.val_alphas:
            raise UsageError("val_alphas", self.val_alphas, "needs at least one fraction of --alpha")


def _make(ckpt: str, env_id: str, objects: list[str], alpha: float, ramp_steps: int, n_envs: int, seed: int,
          scenarios: list[str]):
    tasks = task_modules()

    def thunk():
        torch.set_num_threads(1)
        import_tasks(tasks)  # a subprocess sees the parent's tasks
        return ResidualEnv(ckpt, env_id, objects, alpha, ramp_steps, n_envs, seed, scenarios)
    return thunk


def train_residual(ckpt: Path, out: Path, cfg: ResidualConfig = ResidualConfig(), objects: Sequence[str] = (),
                   scenarios: Sequence[str] = (), workers: int = 2, seed: int = 0, minutes: float | None = None,
                   progress: bool = True) -> dict:
    """Trains a residual on the frozen base `ckpt` into `out` (residual.zip, residual.json, metrics.jsonl,
    residual.png), on `objects` (default: the task's train objects) in train environments and poses, or on the given
    `scenarios`; validates its alpha; returns residual.json's content. `workers` envs, each in its own process."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    check_config(cfg)
    env_id = read_checkpoint(ckpt)["config"]["env_args"]["env_name"]
    space = task_of_env(env_id).scenario_space()
    if scenarios and objects:
        raise UsageError("objects", list(objects), "pass objects or scenarios, not both: scenarios name their objects")
    scenarios = [str(space.validate(Scenario.parse(s))) for s in scenarios]
    objects = sorted({Scenario.parse(s).object_id for s in scenarios}) if scenarios else list(objects) or space.train_objects
    out.mkdir(parents=True, exist_ok=True)
    ramp_steps = int(cfg.ramp * cfg.timesteps)
    thunks = [_make(str(ckpt), env_id, objects, cfg.alpha, ramp_steps, workers, seed + 1000 * i, scenarios)
              for i in range(workers)]
    venv = SubprocVecEnv(thunks, start_method="spawn") if workers > 1 else DummyVecEnv(thunks)
    venv.seed(seed)
    n = workers
    if cfg.algo == "sac":
        # Policy Decorator's recipe, sized for a CPU: small nets, updates every env step after a warm-up
        model = rl_algorithms()["sac"]("MlpPolicy", venv, learning_rate=3e-4, buffer_size=200_000, batch_size=256,
                                       learning_starts=max(1000, 2 * 150 * n), train_freq=1, gradient_steps=max(1, n // 2),
                                       gamma=0.97, ent_coef="auto_0.01", policy_kwargs=dict(net_arch=[256, 256]),
                                       seed=seed, device="cpu", verbose=0)
        # the residual starts as "no correction" with little noise (zero mean, std ~0.14 before the squash), so the
        # first combined rollouts are the base's; SB3's default (random mean, std 1, entropy weight 1) turned a weak
        # base's successes on new objects into none within the budget
        with torch.no_grad():
            model.actor.mu.weight.mul_(0.01)
            model.actor.mu.bias.zero_()
            model.actor.log_std.weight.mul_(0.01)
            model.actor.log_std.bias.fill_(-2.0)
    else:
        # ResiP's recipe: small initial log-std, many steps per update, normalized advantages
        model = rl_algorithms()["ppo"]("MlpPolicy", venv, learning_rate=3e-4, n_steps=1024 // n, batch_size=256,
                                       n_epochs=10, gamma=0.97, gae_lambda=0.95, clip_range=0.2, ent_coef=0.0,
                                       policy_kwargs=dict(net_arch=[256, 256], log_std_init=-1.0), seed=seed,
                                       device="cpu", verbose=0)
    metrics_path = out / "metrics.jsonl"
    save_text(metrics_path, "")
    t0 = time.perf_counter()

    class Log(BaseCallback):
        def __init__(self):
            super().__init__()
            self.episodes: list[dict] = []
            self.bar = None

        def _on_training_start(self):
            from tqdm import tqdm

            self.bar = tqdm(total=cfg.timesteps, desc=f"residual {cfg.algo}", disable=not progress)

        def _on_step(self) -> bool:
            self.bar.update(n)
            if "buffer_actions" in self.locals:
                # off-policy: store the correction that was executed, which is none where epsilon skipped the residual
                # (called before SB3 stores the transition)
                for i, info in enumerate(self.locals["infos"]):
                    if not info["residual_applied"]:
                        self.locals["buffer_actions"][i] = 0.0
            for info, done in zip(self.locals["infos"], self.locals["dones"]):
                if done and "episode_success" in info:
                    self.episodes.append(dict(step=self.num_timesteps, success=info["episode_success"],
                                              epsilon=info["epsilon"], residual_fraction=info["residual_fraction"]))
                    append_jsonl(metrics_path, self.episodes[-1])
                    recent = self.episodes[-20:]
                    self.bar.set_postfix(eps=f"{info['epsilon']:.2f}",
                                         success=f"{np.mean([e['success'] for e in recent]):.0%}")
            return minutes is None or time.perf_counter() - t0 < 60 * minutes

        def _on_training_end(self):
            self.bar.close()

    log = Log()
    model.learn(cfg.timesteps, callback=log)
    seconds = time.perf_counter() - t0
    with atomic_write(out / "residual.zip") as tmp:
        model.save(tmp)
    venv.close()
    eps = log.episodes
    summary = dict(base_ckpt=str(ckpt), env_id=env_id, algo=cfg.algo, alpha=cfg.alpha, trained_alpha=cfg.alpha,
                   validation=None, objects=objects, scenarios=scenarios or None,
                   timesteps=int(model.num_timesteps), ramp_steps=ramp_steps, seconds=round(seconds, 1),
                   steps_per_second=round(model.num_timesteps / seconds, 1), episodes=len(eps),
                   first_success=float(np.mean([e["success"] for e in eps[:20]])) if eps else None,
                   last_success=float(np.mean([e["success"] for e in eps[-20:]])) if eps else None,
                   config=asdict(cfg), workers=workers, seed=seed)
    summary["provenance"] = provenance()
    save_json(out / "residual.json", summary)  # validation loads the residual from it
    if cfg.val_episodes:
        alphas = sorted({round(f * cfg.alpha, 6) for f in cfg.val_alphas})
        rates = validate(ckpt, out, env_id, objects, alphas, cfg.val_episodes, workers, seed, scenarios)
        summary["alpha"] = select_alpha(rates, cfg.val_episodes)
        summary["validation"] = dict(episodes=cfg.val_episodes, success={str(a): r for a, r in rates.items()},
                                     chosen=summary["alpha"])
        print(f"[residual] validation success by alpha ({cfg.val_episodes} episodes each): "
              + ", ".join(f"{a:g}: {format_rate(round(r * cfg.val_episodes), cfg.val_episodes)}"
                          for a, r in rates.items()) + f"; keeping alpha {summary['alpha']:g}")
        save_json(out / "residual.json", summary)
    plot(out, eps)
    print(f"[residual] {cfg.algo} on {env_id}: {summary['timesteps']} steps in {seconds:.0f} s "
          f"({summary['steps_per_second']:.0f}/s), training-episode success {summary['first_success']} -> "
          f"{summary['last_success']} (first/last 20 episodes); wrote {out / 'residual.zip'}")
    return summary


def plot(out: Path, episodes: list[dict]) -> None:
    if not episodes:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([e["step"] for e in episodes])
    succ = np.array([e["success"] for e in episodes], float)
    k = max(1, min(20, len(succ) // 5))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps[k - 1:], np.convolve(succ, np.ones(k) / k, mode="valid"), label=f"training success ({k}-episode mean)")
    ax.plot(steps, [e["epsilon"] for e in episodes], "--", label="epsilon (residual applied)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("env step")
    ax.legend()
    ax.set_title(out.name)
    fig.tight_layout()
    with atomic_write(out / "residual.png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
