"""Ray against the local process pool on the same jobs: `python -m benchmarks.ray_overhead`.

Two workloads: A_EP generation (grasp, `--demos` successful demos) and evaluation episodes (the grasp expert through the
leaderboard's cell player, `--episodes`). Each runs with 1 and 2 workers on the local backend and on a local Ray started
here, side by side in one run; the ratio local / Ray is Ray's overhead on this machine. Ray's start-up is timed apart.
Writes `benchmarks/results/ray_overhead.json`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dexenvs  # noqa: F401
from benchmarks.common import RESULTS, ResultArgs, save_result
from benchmarks.leaderboard import scenarios
from benchmarks.leaderboard.agents import AgentSpec, CellPlayer
from dexenvs import executor as ex
from dexenvs.cli import Count, run_cli


@dataclass
class Args(ResultArgs):
    demos: Count = 40
    episodes: Count = 40
    out: Path = RESULTS / "ray_overhead.json"

    def outputs(self) -> list[Path]:
        return [self.out]


def aep(workers: int, n: int, src: Path, tmp: Path) -> float:
    from generators import augment

    out = tmp / f"aep_{time.perf_counter_ns()}.hdf5"
    t0 = time.perf_counter()
    augment.generate("grasp", src, out, n, workers=workers, progress=False)
    return n * 3600 / (time.perf_counter() - t0)


def evaluation(workers: int, n: int) -> float:
    lst = scenarios.load()["lists"]["grasp"]["test_oep"]
    jobs = [(0, i, lst[i % len(lst)]) for i in range(n)]
    t0 = time.perf_counter()
    list(ex.executor(workers).map(CellPlayer, (AgentSpec("expert"), "grasp", "test_oep", None), CellPlayer.play, jobs))
    return n / (time.perf_counter() - t0)


def main(args: Args) -> dict:
    from generators import seed

    tmp = Path(tempfile.mkdtemp())
    try:
        src = seed.main(seed.Args(task="grasp", out=tmp / "seed.hdf5"))
        rows = {}
        for backend in ("local", "ray"):
            t0 = time.perf_counter()
            if backend == "ray":
                ex.use_ray(None)
                ex.executor(1)  # starts Ray
            start = time.perf_counter() - t0
            for w in (1, 2):
                evaluation(w, 2 * w)  # warm the workers: set-up is paid once per worker, not per job
                rows[f"{backend} {w}"] = dict(aep_demos_per_h=aep(w, args.demos, src, tmp),
                                              eval_episodes_per_s=evaluation(w, args.episodes),
                                              **({"ray_start_s": start} if backend == "ray" else {}))
                print(f"[ray_overhead] {backend} x{w}: A_EP {rows[f'{backend} {w}']['aep_demos_per_h']:.0f} demos/h, "
                      f"evaluation {rows[f'{backend} {w}']['eval_episodes_per_s']:.2f} episodes/s", flush=True)
            ex.use_local()
        ratios = {f"x{w}": dict(aep=rows[f"local {w}"]["aep_demos_per_h"] / rows[f"ray {w}"]["aep_demos_per_h"],
                                eval=rows[f"local {w}"]["eval_episodes_per_s"] / rows[f"ray {w}"]["eval_episodes_per_s"])
                  for w in (1, 2)}
        for k, r in ratios.items():
            print(f"[ray_overhead] {k} workers, local / Ray: A_EP {r['aep']:.2f}, evaluation {r['eval']:.2f}")
        result = dict(rows=rows, local_over_ray=ratios)
        save_result(args.out, result, args)
        print(f"[ray_overhead] wrote {args.out}")
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_cli(main, Args)
