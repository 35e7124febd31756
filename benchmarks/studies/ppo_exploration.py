"""How much exploration noise PPO on DexRegrasp-v0 can start with before random finger motion drops every grasp:

    python -m benchmarks.studies.ppo_exploration --minutes 4 --log-stds -1 -2 -3

Trains one PPO per initial log-std (one worker each, all at once, the same seed and wall-time budget) and prints, for
the episodes each finished, the mean episode length, the drop rate and the goals reached per episode, each rate with
its 95% interval. Writes benchmarks/results/ppo_exploration.json.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from agents.ppo import PPOConfig, train_ppo
from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Positive, UsageError, run_cli
from dexenvs.rates import format_rate, rate_record
from dexenvs.results import read_jsonl


def _train(log_std: float, minutes: float, out: Path) -> list[dict]:
    cfg = replace(PPOConfig(), minutes=minutes, log_std_init=log_std)
    d = out / f"log_std_{log_std:g}"
    train_ppo("DexRegrasp-v0", d, cfg, workers=1, progress=False)
    return read_jsonl(d / "metrics.jsonl")


def summarize(episodes: list[dict]) -> dict:
    n = len(episodes)
    steps = [e["step"] for e in episodes]
    lengths = np.diff([0] + steps) if n else np.zeros(0)
    return dict(episodes=n, env_steps=steps[-1] if n else 0, mean_length=float(lengths.mean()) if n else 0.0,
                drop=rate_record(sum(bool(e["fail"]) for e in episodes), n),
                goals_per_episode=float(np.mean([e["consecutive"] or 0 for e in episodes])) if n else 0.0)


@dataclass
class Args(ResultArgs):
    minutes: Positive = 4.0
    log_stds: list[float] = field(default_factory=lambda: [-1.0, -2.0])
    out: Path = Path("runs/ppo_exploration")

    def outputs(self) -> list[Path]:
        return [RESULTS / "ppo_exploration.json"]

    def check(self) -> None:
        if not self.log_stds:
            raise UsageError("log-stds", "", "name at least one initial log-std, e.g. --log-stds -1 -3")
        super().check()


def main(args: Args) -> dict:
    with ProcessPoolExecutor(len(args.log_stds)) as pool:
        runs = list(pool.map(_train, args.log_stds, [args.minutes] * len(args.log_stds),
                             [args.out] * len(args.log_stds)))
    res = {f"{s:g}": summarize(eps) for s, eps in zip(args.log_stds, runs)}
    print(f"PPO on DexRegrasp-v0, {args.minutes:g} min each on one worker (episodes are per worker, ended by a drop or "
          f"the time limit)")
    print(f"{'log std':>8s} {'episodes':>9s} {'env steps':>10s} {'mean length':>12s} {'dropped':>28s} {'goals/ep':>9s}")
    for s, r in res.items():
        print(f"{s:>8s} {r['episodes']:9d} {r['env_steps']:10d} {r['mean_length']:12.1f} "
              f"{format_rate(r['drop']['successes'], r['drop']['episodes']):>28s} {r['goals_per_episode']:9.3f}")
    save_result(RESULTS / "ppo_exploration.json", res, args)
    return res


if __name__ == "__main__":
    run_cli(main, Args)
