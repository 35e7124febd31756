"""DexWild's co-training experiment on the grasp: `python -m benchmarks.cotrain --robot runs/grasp_policy/aep.hdf5
--human runs/human --steps 1500`.

1. A small robot dataset from few environments: the demos of `--robot` recorded in its `--envs` most common
   environments (and only the objects and poses those demos show).
2. Human-layout data from many: the stand-in episodes of `--human` (every train object and environment, a widened
   workspace), retargeted to the Inspire hand (`generators.human.to_robot`).
3. The diffusion policy trained on the robot data alone and co-trained at robot:human ratios 1:1, 1:2 and 1:5, all in
   the same embodiment-agnostic representation (`agents.embodiment`) and with the same steps, batch and seed.
4. Each evaluated in DexGrasp-v0 on T_OEP (held-out objects, environments and poses) and on held-out environments with
   train objects and poses, the same episodes for every policy.

Writes `benchmarks/results/cotrain.json` (per ratio: success, episodes and 95% interval per test set) and the table.
The environments change only what a camera sees; these are state policies, so what the human data can add is its wider
spread of objects and poses.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, ExistingPath, run_cli
from dexenvs.rates import format_rate

RATIOS = (0.0, 1.0, 2.0, 5.0)  # human windows per robot window: robot only, 1:1, 1:2, 1:5
DEXWILD = {"robot only": 22.0, "1:1": None, "1:2": 62.7, "1:5": None}  # unseen environments, their Table / Fig.


@dataclass
class Args(ResultArgs):
    robot: ExistingPath = Path("runs/grasp_policy/aep.hdf5")
    human: ExistingPath = Path("runs/human")
    """a folder of EgoDex-layout grasp episodes with object poses (python -m generators.human.standin)"""
    work: Path = Path("runs/cotrain")
    """datasets and checkpoints (kept: a rerun reuses what is there)"""
    envs: Count = 2
    steps: Count = 1500
    batch_size: Count = 128
    episodes: Count = 40
    """evaluation episodes per test set and policy"""
    scale: float = 1 / 1.1
    """human fingertip scale for retargeting (the stand-in's hand is the robot's x1.1)"""
    workers: Count = 2
    out: Path = RESULTS / "cotrain.json"

    def outputs(self) -> list[Path]:
        return [self.out]


def few_environments(src: Path, dst: Path, n_envs: int) -> dict:
    """The demos of `src` from its `n_envs` most common environments, as a dataset at `dst`."""
    from dexenvs.trajectory import DatasetWriter, demo_names, open_dataset, read_episode

    with open_dataset(src) as f:
        names = demo_names(f)
        env_of = {n: f["data"][n].attrs["scenario"].split("|")[1] for n in names}
        keep_envs = [e for e, _ in collections.Counter(env_of.values()).most_common(n_envs)]
        keep = [n for n in names if env_of[n] in keep_envs]
        if not dst.exists():
            with DatasetWriter(dst, json.loads(f["data"].attrs["env_args"])) as w:
                for n in keep:
                    w.add(read_episode(f["data"][n]))
        objects = sorted({f["data"][n].attrs["scenario"].split("|")[0] for n in keep})
    return dict(demos=len(keep), environments=keep_envs, objects=len(objects))


def held_out_env_scenarios(n: int, seed: int = 0) -> list[str]:
    """`n` scenarios: a train object and pose in a held-out environment."""
    from dexenvs.scenarios import Scenario
    from dexenvs.tasks import get_task

    space = get_task("grasp").scenario_space()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = space.sample("train", rng)
        out.append(str(Scenario(s.object_id, space.test_envs[rng.integers(len(space.test_envs))], s.pose_id)))
    return out


def label(ratio: float) -> str:
    return "robot only" if ratio == 0 else f"1:{ratio:g}"


def main(args: Args) -> dict:
    from agents.evaluate import evaluate
    from agents.train import TrainConfig, train
    from generators.human.to_robot import convert

    args.work.mkdir(parents=True, exist_ok=True)
    robot = args.work / "robot_few_envs.hdf5"
    robot_info = few_environments(args.robot, robot, args.envs)
    print(f"[cotrain] robot data: {robot_info['demos']} demos from {robot_info['environments']} "
          f"({robot_info['objects']} objects)", flush=True)
    human = args.work / "human_inspire.hdf5"
    if not human.exists():
        convert(args.human, "grasp", robot, human, scale=args.scale, progress=False)
    cfg = TrainConfig(batch_size=args.batch_size)
    tests = dict(test_oep=dict(split="test_oep", scenarios=None),
                 held_out_envs=dict(split="train", scenarios=held_out_env_scenarios(args.episodes)))
    rows = {}
    for ratio in RATIOS:
        run = args.work / f"ratio_{ratio:g}"
        ckpt = run / "checkpoint.pt"
        if not ckpt.exists():
            train(robot, run, cfg, steps=args.steps, seed=0, device="cpu", progress=False, human=human,
                  human_ratio=ratio)
        row = {}
        for name, t in tests.items():
            res = evaluate(ckpt, None, t["split"], seeds=1, episodes=args.episodes, workers=args.workers,
                           scenarios=t["scenarios"])
            row[name] = dict(successes=res["successes"], episodes=res["episodes"], interval=res["interval"])
            print(f"[cotrain] {label(ratio):>10} {name:>14}: {format_rate(res['successes'], res['episodes'])}",
                  flush=True)
        rows[label(ratio)] = row
    import h5py

    with h5py.File(human, "r") as f:
        human_demos = len(f["mask/train"])
    result = dict(robot=robot_info, human_demos=human_demos, steps=args.steps, batch_size=args.batch_size,
                  rows=rows, dexwild_unseen_env=DEXWILD)
    print("\n| robot:human | T_OEP | held-out environments | DexWild, unseen environments |\n|---|---|---|---|")
    for name, row in rows.items():
        dw = DEXWILD.get(name)
        print(f"| {name} | " + " | ".join(format_rate(row[t]["successes"], row[t]["episodes"]) for t in tests)
              + f" | {f'{dw:.1f}%' if dw is not None else '-'} |")
    save_result(args.out, result, args)
    print(f"[cotrain] wrote {args.out}")
    return result


if __name__ == "__main__":
    run_cli(main, Args)
