"""SAC vs PPO for the residual, on the same frozen base, objects, alpha and env-step budget, evaluated on the same
episodes (the issue asks to choose the residual's algorithm by measurement):

    python -m benchmarks.studies.residual_algo --ckpt runs/flywheel/grasp/base_1/checkpoint.pt --objects box_00 box_01 ...

Trains each residual into <out>/<algo>/ (an existing residual.zip with the same settings is reused), then evaluates the
base and both combined policies on the objects in the seed's environment and pose (those of the base's dataset's first demo) and on the held-out T_OEP set. Prints one table and writes benchmarks/results/residual_algo.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


from agents import evaluate as ev
from agents.checkpoint import read_checkpoint
from agents.residual.train import ResidualConfig, train_residual
from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.rates import format_rate
from dexenvs.cli import Count, ExistingPath, Positive, run_cli
from dexenvs.scenarios import Scenario
from dexenvs.tasks import task_of_env
from dexenvs.trajectory import demo_names, open_dataset


@dataclass
class Args(ResultArgs):
    ckpt: ExistingPath
    """the frozen base policy"""
    objects: list[str] = field(default_factory=list)
    """objects the residuals train and are tested on (default: the task's training objects)"""
    algos: list[Literal["sac", "ppo"]] = field(default_factory=lambda: ["sac", "ppo"])
    timesteps: Count = 30_000
    alpha: Positive = 0.1
    seeds: Count = 5
    episodes: Count = 8
    workers: Count = 2
    out: Path = Path("runs/residual_algo")

    def outputs(self) -> list[Path]:
        return [RESULTS / "residual_algo.json"]


def main(args: Args) -> dict:
    cfg = read_checkpoint(args.ckpt)["config"]
    env_id = cfg["env_args"]["env_name"]
    space = task_of_env(env_id).scenario_space()
    objects = args.objects or space.train_objects
    with open_dataset(Path(cfg["dataset"])) as f:  # the T_O set keeps the base's first demo's environment and pose
        seed_scen = Scenario.parse(str(f["data"][demo_names(f)[0]].attrs["scenario"]))
    sets = {"T_O": [str(Scenario(o, seed_scen.env_id, seed_scen.pose_id)) for o in objects],
            "T_OEP": [str(s) for s in space.scenarios("test_oep")]}
    trained = {}
    for algo in args.algos:
        d = args.out / algo
        prev = json.loads((d / "residual.json").read_text()) if (d / "residual.json").exists() else None
        if prev and prev["base_ckpt"] == str(args.ckpt) and prev["timesteps"] == args.timesteps \
                and prev["alpha"] == args.alpha and prev["objects"] == objects:
            trained[algo] = prev
        else:
            cfg = ResidualConfig(algo=algo, timesteps=args.timesteps, alpha=args.alpha, val_episodes=0)
            trained[algo] = train_residual(args.ckpt, d, cfg, objects, workers=args.workers)  # as trained, at --alpha
    rows = {}
    for name, scen in sets.items():
        for pol, resid in [("base", None)] + [(a, args.out / a) for a in args.algos]:
            s = ev.evaluate(args.ckpt, env_id, "train", args.seeds, args.episodes, args.workers, resid, scenarios=scen)
            rows.setdefault(pol, {})[name] = dict(mean=s["success_mean"], std=s["success_std"], episodes=s["episodes"],
                                                  successes=s["successes"], interval=s["interval"])
            print(f"[residual_algo] {name} {pol}: {format_rate(s['successes'], s['episodes'])}")
    lines = ["| policy | train time | env steps/s | T_O (objects, seed E/P) | T_OEP |", "|---|---|---|---|---|"]
    for pol, r in rows.items():
        t = trained.get(pol)
        lines.append(f"| {pol if pol == 'base' else 'base + ' + pol.upper() + ' residual'} | "
                     f"{'-' if t is None else str(round(t['seconds'] / 60, 1)) + ' min'} | "
                     f"{'-' if t is None else t['steps_per_second']} | "
                     + " | ".join(format_rate(r[k]["successes"], r[k]["episodes"]) for k in sets) + " |")
    table = "\n".join(lines)
    print(table)
    out = dict(base=str(args.ckpt), env_id=env_id, objects=objects, timesteps=args.timesteps, alpha=args.alpha,
               seeds=args.seeds, episodes=args.episodes, results=rows, training=trained, table=table)
    save_result(RESULTS / "residual_algo.json", out, args)
    return out


if __name__ == "__main__":
    run_cli(main, Args)
