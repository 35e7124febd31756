"""How much of a flywheel run's T_OEP figure is evaluation noise? Plays each run's base again on the same held-out
configurations under further evaluation seeds, and prints the runs side by side.

    python -m benchmarks.studies.flywheel_reeval runs/flywheel/pour_no_residual_2seeds_cover2 \
        runs/flywheel/pour_no_residual_2seeds_cover2_12k --rounds 2

A run's T_OEP is its evaluation's seeds x 8 episodes, cycling over the held-out configurations. Each round here plays
the same configurations with the next seeds (seeds the run's own evaluation never
played: other initial states and sampling noise), and the figure to compare is the mean over the run's episodes and the
rounds' together. Results join benchmarks/results/flywheel_reeval.json, one entry per run directory and iteration
(`<run>/i<iteration>`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from agents import evaluate as ev
from benchmarks.common import RESULTS, save_result
from dexenvs.rates import format_rate
from dexenvs.cli import Count, ExistingPath, run_cli
from dexenvs.tasks import get_task
from generators.flywheel.config import per_iter


@dataclass
class Args:
    runs: tyro.conf.Positional[tuple[ExistingPath, ...]]
    """flywheel run directories (generators.flywheel --out)"""
    iteration: Count = 3
    """whose base to play: base_<iteration>, against the run's own <iteration>.eval"""
    rounds: Count = 2
    """further evaluations, each as many seeds and episodes as the run's own"""
    workers: Count = 2
    out: Path = RESULTS / "flywheel_reeval.json"
    """runs already measured there are kept, not redone"""


def evaluated_state(run: Path, iteration: int) -> dict:
    """A flywheel run's state.json, which must hold the evaluation of `iteration`."""
    state = json.loads((run / "state.json").read_text())
    if f"{iteration}.eval" not in state["stages"]:
        done = sorted(int(k.split(".")[0]) for k in state["stages"] if k.endswith(".eval"))
        raise ValueError(f"{run} has not evaluated iteration {iteration}; its evaluated iterations: {done}")
    return state


def reevaluate(run: Path, iteration: int, rounds: int, workers: int) -> dict:
    state = evaluated_state(run, iteration)
    settings, stages = state["settings"], state["stages"]
    spec = get_task(settings["task"])
    env_id = spec.env_id
    # the flywheel's own T_OEP list and order, so each seed plays the configurations it played there
    scenarios = [str(s) for s in spec.scenario_space().scenarios("test_oep")]
    seeds, episodes = settings["eval"]["seeds"] * settings["eval"]["t_oep_rounds"], settings["eval"]["episodes"]
    own = stages[f"{iteration}.eval"]["result"]["figures"]["T_OEP/base"]
    per_round = [dict(first_seed=0, mean=own["mean"], std=own["std"], episodes=own["episodes"])]
    for r in range(1, rounds + 1):
        s = ev.evaluate(run / f"base_{iteration}" / "checkpoint.pt", env_id, "train", seeds, episodes, workers,
                        scenarios=scenarios, first_seed=r * seeds)
        per_round.append(dict(first_seed=r * seeds, mean=s["success_mean"], std=s["success_std"],
                              episodes=s["episodes"], per_scenario={k: v["success"] for k, v in s["per_scenario"].items()}))
        print(f"[reeval] {run.name} round {r}: {format_rate(s['successes'], s['episodes'])} ({s['seconds']:.0f} s)")
    n = sum(p["episodes"] for p in per_round)
    mean = sum(p["mean"] * p["episodes"] for p in per_round) / n
    return dict(task=settings["task"], iteration=iteration, train_steps=settings["train_steps"], rounds=per_round,
                mean=mean, episodes=n, round_spread=float(np.ptp([p["mean"] for p in per_round])))


def result_key(run: Path, iteration: int) -> str:
    """One entry per run and iteration, so re-evaluating a run's earlier base keeps its final one's."""
    return f"{run.name}/i{iteration}"


def main(args: Args) -> dict:
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.pop("provenance", None)
    rows = []
    for run in args.runs:
        r = reevaluate(run, args.iteration, args.rounds, args.workers)
        results[result_key(run, args.iteration)] = r
        rows.append((run.name, r))
        save_result(args.out, results, args)  # each finished run is kept if a later one is interrupted
    print(f"\n| run | i = {args.iteration} steps | own T_OEP (40) | "
          + " | ".join(f"round {k}" for k in range(1, args.rounds + 1)) + " | all episodes |")
    print("|---|---|---|" + "---|" * args.rounds + "---|")
    for name, r in rows:
        print(f"| {name} | {per_iter(r['train_steps'], args.iteration)} | " + " | ".join(f"{p['mean']:.1%}" for p in r["rounds"])
              + f" | **{r['mean']:.1%}** ({r['episodes']}) |")
    print(f"[reeval] wrote {args.out}")
    return results


if __name__ == "__main__":
    run_cli(main, Args)
