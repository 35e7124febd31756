"""How much of a flywheel figure is the draw of its base's training? Trains a run's base again on the run's own D_i
under other training seeds (weight init and batch order; the same steps, widths and data), plays each on the run's own
T_O^i and T_OEP episodes (the same configurations and evaluation seeds as the run's `<i>.eval`), and prints the seeds
side by side with their mean and standard deviation.

    python -m benchmarks.studies.base_seeds runs/flywheel/lift_default --iterations 1 2 --train-seeds 1 2

`benchmarks.flywheel_reeval` measures the other half: the same base under further evaluation seeds. Bases train into
`<run>/base_<i>_seed<k>` and resume there after an interruption; a seed already in the results file is not trained or
played again. Results join benchmarks/results/base_seeds.json, one entry per run directory and iteration
(`<run>/i<iteration>`), the run's own base as seed 0 (its base figures; with the residual off they are its table's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from agents import evaluate as ev
from agents import train as tr
from benchmarks.common import RESULTS, save_result
from dexenvs.rates import format_rate
from dexenvs.cli import Count, ExistingPath, NonNegative, run_cli
from benchmarks.studies.flywheel_reeval import evaluated_state
from dexenvs.scenarios import Scenario
from dexenvs.tasks import get_task
from dexenvs.trajectory import demo_names, open_dataset
from generators.flywheel.config import per_iter
from generators.flywheel.stages import iteration_objects


@dataclass
class Args:
    run: tyro.conf.Positional[ExistingPath]
    """a flywheel run directory (generators.flywheel --out) that has evaluated the iterations asked for"""
    iterations: tuple[Count, ...] = (1, 2)
    train_seeds: tuple[NonNegative, ...] = (1, 2)
    """training seeds besides the run's own (its `--seed`, 0 by default)"""
    workers: Count = 2
    device: str = "auto"
    progress: bool = True
    out: Path = RESULTS / "base_seeds.json"
    """seeds already measured there are kept, not redone"""


def _figures(s: dict) -> dict:
    return dict(mean=s["success_mean"], std=s["success_std"], episodes=s["episodes"],
                per_scenario={k: v["success"] for k, v in s["per_scenario"].items()})


def eval_sets(run: Path, iteration: int) -> tuple[str, dict[str, list[str]], dict]:
    """The task's env id, the run's T_O^i and T_OEP configurations in its own order, and its state."""
    state = evaluated_state(run, iteration)
    spec = get_task(state["settings"]["task"])
    env_id, space = spec.env_id, spec.scenario_space()
    # both lists in the flywheel's own order, so each evaluation seed plays the configuration it played there
    with open_dataset(run / "seed.hdf5") as f:
        seeds = [Scenario.parse(str(f["data"][n].attrs["scenario"])) for n in demo_names(f)]
    t_o = [str(Scenario(o, seeds[0].env_id, seeds[0].pose_id))
           for o in iteration_objects(space, [s.object_id for s in seeds], iteration)]
    t_oep = [str(s) for s in space.scenarios("test_oep")]
    return env_id, dict(T_O=t_o, T_OEP=t_oep), state


def main(args: Args) -> dict:
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.pop("provenance", None)
    table = []
    for i in args.iterations:
        env_id, sets, state = eval_sets(args.run, i)
        settings, stages = state["settings"], state["stages"]
        key = f"{args.run.name}/i{i}"
        entry = results.setdefault(key, dict(task=settings["task"], iteration=i, seeds={}))
        own_seed = str(settings.get("seed", 0))
        own = stages[f"{i}.eval"]["result"]["figures"]
        entry["seeds"][own_seed] = dict(
            **{name: {k: own[f"{name}/base"][k] for k in ("mean", "std", "episodes", "per_scenario")} for name in sets},
            train=stages[f"{i}.train"]["result"], own_run=True)
        if own_seed in map(str, args.train_seeds):
            raise ValueError(f"--train-seeds {own_seed} is the run's own seed; choose others")
        for k in args.train_seeds:
            if str(k) in entry["seeds"]:
                continue
            base = args.run / f"base_{i}_seed{k}"
            train = tr.train(Path(stages[f"{i}.data"]["result"]["path"]), base, tr.TrainConfig(**settings["base"]),
                             per_iter(settings["train_steps"], i), seed=k, device=args.device, resume=True,
                             progress=args.progress)
            figs = {}
            for name, scen in sets.items():
                seeds = settings["eval"]["seeds"] * (settings["eval"]["t_oep_rounds"] if name == "T_OEP" else 1)
                s = ev.evaluate(base / "checkpoint.pt", env_id, "train", seeds, settings["eval"]["episodes"],
                                args.workers, scenarios=scen)
                figs[name] = _figures(s)
                print(f"[base_seeds] {key} training seed {k}: {name} {format_rate(s['successes'], s['episodes'])}")
            entry["seeds"][str(k)] = dict(**figs, train={k2: train[k2] for k2 in ("step", "seconds", "final_loss")})
            save_result(args.out, results, args)  # each finished seed is kept if a later one is interrupted
        for name in sets:
            vals = [v[name]["mean"] for v in entry["seeds"].values()]
            entry[name] = dict(mean=float(np.mean(vals)), std=float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                               seeds=len(vals))
        save_result(args.out, results, args)
        table.append((key, entry))

    seeds = sorted({s for _, e in table for s in e["seeds"]}, key=int)
    print("\n| run / iteration | test set | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd over seeds |")
    print("|---|---|" + "---|" * len(seeds) + "---|")
    for key, e in table:
        for name in ("T_O", "T_OEP"):
            cells = [f"{e['seeds'][s][name]['mean']:.1%}" if s in e["seeds"] else "" for s in seeds]
            print(f"| {key} | {name} | " + " | ".join(cells) + f" | **{e[name]['mean']:.1%} ± {e[name]['std']:.1%}** |")
    print(f"[base_seeds] wrote {args.out}")
    return results


if __name__ == "__main__":
    run_cli(main, Args)
