"""Speed per core, before and after, side by side in one run: `python -m benchmarks.speed --base faf8ecd`.

`--base` (a commit) is checked out as a git worktree next to this one; every measurement runs as its own process in
each tree in turn (base, this tree, base, ...; `--repeats` rounds, best of each kept: these machines are noisy), on
the same interpreter and packages, so the two columns differ only by the code. Measurements:

- per task, state mode: env steps/s with the scripted expert, the raw PhysX loop over the same episodes, the env's
  overhead over it, and ManiSkill's own Empty-v1 overhead with the same hand and substeps (`benchmarks.throughput`);
- resets/s over episodes that each draw a scenario (most load a new object and rebuild the scene);
- rgb steps/s (128x128 head camera) for the grasp;
- A_EP successful demos/h (grasp and lift) and evaluation episodes/s (the scripted expert through the executor, grasp
  and lift) on 1 and `--workers` worker processes; wall time includes starting the workers.

Prints one table with after/before ratios and writes `benchmarks/results/speed.json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, UsageError, run_cli
from dexenvs.tasks import TaskName

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("grasp", "pour", "lift", "handover")


@dataclass
class Args(ResultArgs):
    base: str = "faf8ecd"
    """the commit to compare against"""
    tasks: tuple[TaskName, ...] = TASKS
    steps: Count = 400
    """control steps per step-rate measurement"""
    resets: Count = 20
    attempts: Count = 40
    """A_EP attempts per measurement"""
    episodes: Count = 20
    """evaluation episodes per measurement"""
    workers: Count = 2
    repeats: Count = 2
    skip: tuple[str, ...] = ()
    """measurement kinds to leave out: step, reset, rgb, aep, eval"""
    out: Path = RESULTS / "speed.json"

    def outputs(self) -> list[Path]:
        return [self.out]

    def check(self) -> None:
        r = subprocess.run(["git", "rev-parse", "--verify", f"{self.base}^{{commit}}"], cwd=ROOT, capture_output=True,
                           text=True)
        if r.returncode:
            raise UsageError("base", self.base, "is not a commit of this repository")
        super().check()


# ---- what runs inside a tree (its own process; imports resolve in that tree) --------------------------------------
def probe(kind: str, task: str, n: int, workers: int = 1) -> dict:
    import time

    import gymnasium as gym
    import torch

    import dexenvs  # noqa: F401
    from dexenvs.tasks import get_task

    spec = get_task(task)
    if kind == "step":
        from benchmarks.throughput import _episodes, _maniskill_floor, _raw

        env = gym.make(spec.env_id).unwrapped
        expert = spec.expert(env)
        _episodes(env, expert, 30, 0, record=False)
        t_env, steps, log = _episodes(env, expert, n, 1000, record=True)
        t_raw = _raw(env, log)
        floor = _maniskill_floor(env.sim_freq, env.control_freq, n)
        env.close()
        return dict(env_steps_per_s=steps / t_env, raw_steps_per_s=steps / t_raw, overhead=t_env / t_raw - 1,
                    empty_overhead=floor["overhead"])
    if kind == "reset":
        env = gym.make(spec.env_id).unwrapped
        env.reset(seed=0)
        t = time.perf_counter()
        for seed in range(1, n + 1):
            env.reset(seed=seed, options=spec.expert_options(seed))
        dt = time.perf_counter() - t
        env.close()
        return dict(resets_per_s=n / dt)
    if kind == "rgb":
        from benchmarks.throughput import _episodes

        env = gym.make(spec.env_id, obs_mode="rgb").unwrapped
        expert = spec.expert(env)
        _episodes(env, expert, 5, 0, record=False)
        t, steps, _ = _episodes(env, expert, n, 0, record=False)
        env.close()
        return dict(rgb_steps_per_s=steps / t)
    if kind == "aep":
        from generators.augment import AugmentConfig, generate
        from generators.seed import record_seeds

        with tempfile.TemporaryDirectory() as tmp:
            src = record_seeds(task, Path(tmp) / "seed.hdf5")
            t = time.perf_counter()
            s = generate(task, src, Path(tmp) / "aep.hdf5", n, AugmentConfig(max_attempts=n), workers=workers,
                         progress=False)
            dt = time.perf_counter() - t
        return dict(demos_per_hour=3600 * s["successes"] / dt, attempts=s["attempts"], successes=s["successes"])
    if kind == "eval":
        from benchmarks.expert_success import ExpertRunner
        from dexenvs.executor import executor

        t = time.perf_counter()
        rows = list(executor(workers).map(ExpertRunner, (task, "train"), ExpertRunner.run, range(n)))
        dt = time.perf_counter() - t
        executor(workers).shutdown()
        return dict(episodes_per_s=n / dt, successes=sum(ok for _, ok in rows))
    raise ValueError(kind)


def _run_in(tree: Path, spec: dict) -> dict:
    code = ("import json, sys, runpy; sys.path.insert(0, '.'); "
            f"m = runpy.run_path({str(Path(__file__).resolve())!r}); "
            f"print('PROBE ' + json.dumps(m['probe'](**json.loads(sys.argv[1]))))")
    env = dict(os.environ, PYTHONPATH=str(tree))
    r = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], cwd=tree, capture_output=True, text=True,
                       env=env)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("PROBE ")]
    if r.returncode or not lines:
        raise RuntimeError(f"probe {spec} failed in {tree}:\n{r.stderr[-3000:]}")
    return json.loads(lines[-1][6:])


def _best(rows: list[dict], key: str, lower_better: bool = False) -> dict:
    return (min if lower_better else max)(rows, key=lambda r: r[key])


def main(args: Args) -> dict:
    base_tree = Path(tempfile.gettempdir()) / f"dexsuite-base-{args.base}"
    if not base_tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.base], cwd=ROOT, check=True,
                       capture_output=True)
    specs = []
    kinds = [k for k in ("step", "reset", "rgb", "aep", "eval") if k not in args.skip]
    for task in args.tasks:
        if "step" in kinds:
            specs.append(dict(kind="step", task=task, n=args.steps))
        if "reset" in kinds:
            specs.append(dict(kind="reset", task=task, n=args.resets))
    if "rgb" in kinds:
        specs.append(dict(kind="rgb", task="grasp", n=60))
    for task in ("grasp", "lift"):
        for w in sorted({1, args.workers}):
            if "aep" in kinds:
                specs.append(dict(kind="aep", task=task, n=args.attempts, workers=w))
            if "eval" in kinds:
                specs.append(dict(kind="eval", task=task, n=args.episodes, workers=w))
    key = dict(step="env_steps_per_s", reset="resets_per_s", rgb="rgb_steps_per_s", aep="demos_per_hour",
               eval="episodes_per_s")
    rows = []
    for spec in specs:
        runs = {"before": [], "after": []}
        for _ in range(args.repeats):
            runs["before"].append(_run_in(base_tree, spec))
            runs["after"].append(_run_in(ROOT, spec))
        k = key[spec["kind"]]
        best = {side: _best(v, k) for side, v in runs.items()}
        row = dict(spec, metric=k, before=best["before"], after=best["after"],
                   ratio=best["after"][k] / best["before"][k])
        rows.append(row)
        what = f"{spec['kind']:5s} {spec['task']:8s}" + (f" x{spec['workers']}" if "workers" in spec else "   ")
        extra = ""
        if spec["kind"] == "step":
            extra = (f"  overhead {best['before']['overhead']:+.0%} -> {best['after']['overhead']:+.0%}"
                     f" (Empty-v1 {best['before']['empty_overhead']:+.0%} / {best['after']['empty_overhead']:+.0%})")
        print(f"[speed] {what} {k:16s} {best['before'][k]:9.1f} -> {best['after'][k]:9.1f}  x{row['ratio']:.2f}{extra}",
              flush=True)
    result = dict(base=args.base, rows=rows)
    save_result(args.out, result, args)
    print(f"[speed] wrote {args.out}")
    return result


if __name__ == "__main__":
    run_cli(main, Args)
