"""Handover success per giving hand: a policy learns only the giver(s) its data demonstrates (A_EP keeps the seed's),
and evaluation asks only those; this asks each giver in turn and shows a checkpoint's success on T_OEP (or the train
split) side by side.

    python -m benchmarks.handover_giver --ckpts runs/flywheel/handover_replay_only/base_3/checkpoint.pt ...

5 seeds x 8 episodes per giver: T_OEP's 40 configurations once each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro
from mani_skill.utils.registration import REGISTERED_ENVS

import agents.evaluate as ev
from dexenvs.tasks.handover import GIVERS

ENV_ID = "DexHandover-v0"
OUT = Path(__file__).parent / "results" / "handover_giver.json"


@dataclass
class Args:
    ckpts: list[Path]
    split: Literal["train", "test_oep"] = "test_oep"
    seeds: int = 5
    episodes: int = 8
    workers: int = 2


def main(args: Args) -> dict:
    scenarios = [str(s) for s in REGISTERED_ENVS[ENV_ID].cls.scenario_space().scenarios("test_oep")] \
        if args.split == "test_oep" else None
    rows = {}
    for ckpt in args.ckpts:
        rows[str(ckpt)] = {}
        for giver in GIVERS:
            r = ev.evaluate(ckpt, ENV_ID, "train", args.seeds, args.episodes, args.workers, scenarios=scenarios,
                            reset_options=[{"giver": giver}])
            rows[str(ckpt)][giver] = dict(mean=r["success_mean"], std=r["success_std"], episodes=r["episodes"])
    print(f"| checkpoint | {' | '.join(f'giver {g}' for g in GIVERS)} |\n|---|" + "---|" * len(GIVERS))
    for ckpt, r in rows.items():
        print(f"| {ckpt} | " + " | ".join(f"{r[g]['mean']:.1%} ± {r[g]['std']:.1%}" for g in GIVERS) + " |")
    OUT.write_text(json.dumps(dict(split=args.split, runs=rows), indent=1))
    return rows


if __name__ == "__main__":
    main(tyro.cli(Args))
