"""Scripted-expert success per split: `python -m benchmarks.expert_success --task grasp --episodes 50`.

Episodes are seeded 0..N-1 per split and spread over two worker processes; prints a table and writes JSON under
benchmarks/results/.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import tyro

from dexenvs.experts import TaskName

SPLITS = ("train", "test_objects", "test_oep")


def _run(task: str, split: str, seeds: list[int]) -> list[tuple[str, bool]]:
    import gymnasium as gym

    import dexenvs  # noqa: F401
    from dexenvs.experts import EXPERTS, episode_options, rollout

    env_id, cls = EXPERTS[task]
    env = gym.make(env_id, split=split).unwrapped
    expert = cls(env)
    out = []
    for s in seeds:
        options = episode_options(task, s)
        ok = bool(rollout(env, expert, seed=s, options=options)["success"][0])
        out.append((str(env.scenarios[0]) + (f"|giver={options['giver']}" if options else ""), ok))
    return out


@dataclass
class Args:
    task: TaskName = "grasp"
    episodes: int = 50
    workers: int = 2
    out: Path = Path("benchmarks/results")


def main(args: Args) -> dict:
    t0 = time.perf_counter()
    res: dict = {}
    with ProcessPoolExecutor(args.workers) as ex:
        futs = {(sp, w): ex.submit(_run, args.task, sp, list(range(w, args.episodes, args.workers)))
                for sp in SPLITS for w in range(args.workers)}
        for sp in SPLITS:
            rows = [r for w in range(args.workers) for r in futs[(sp, w)].result()]
            by_cat = defaultdict(list)
            for scen, ok in rows:
                by_cat[scen.split("|")[0].rsplit("_", 1)[0]].append(ok)
            res[sp] = dict(success=sum(ok for _, ok in rows) / len(rows), episodes=len(rows),
                           per_category={c: sum(v) / len(v) for c, v in sorted(by_cat.items())},
                           failures=[s for s, ok in rows if not ok])
    print(f"{args.task} expert, {args.episodes} episodes per split ({time.perf_counter() - t0:.0f} s)")
    print(f"{'split':14s} {'success':>8s}  per category")
    for sp in SPLITS:
        cats = ", ".join(f"{c} {v:.0%}" for c, v in res[sp]["per_category"].items())
        print(f"{sp:14s} {res[sp]['success']:8.1%}  {cats}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"expert_success_{args.task}.json").write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main(tyro.cli(Args))
