"""A_EP generation (`generate`): one source file of seed demos (or policy rollouts) becomes `num` successful demos
across objects, environments and poses, written crash-safe and resumable.

Attempt k's scenario and reset seed are a pure function of (seed, k) and results are accepted in attempt order, so the
dataset is the same with any number of workers, and a resumed run continues at the first attempt it had not finished,
adding no duplicates. Writes `<out>` (robomimic layout, with `data.attrs["generation"]`), `<out>.attempts.jsonl` (one
line per attempt, in attempt order: what resume reads) and `<out stem>.json` (the summary: attempts, successes, success
rate, demos per hour, coverage of O, E, P and O x E x P, per-object success).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from dexenvs.cli import Count, DexError, NonNegative, UsageError, check_output, validate
from dexenvs.executor import executor
from dexenvs.rates import format_rate, wilson_interval
from dexenvs.results import append_jsonl, provenance, read_jsonl, save_json, save_text
from dexenvs.scenarios import Scenario
from dexenvs.tasks import get_task
from dexenvs.trajectory import DatasetWriter, Episode, Recorder, demo_names, make_env, open_dataset, read_episode
from generators.augment.augmenter import Augmenter
from generators.augment.sampling import attempt_scenario, object_pool, source_for


@dataclass
class AugmentConfig:
    """Where A_EP carries the source and how (the flywheel sets these per iteration)."""

    split: Literal["train", "test_objects", "test_oep"] = "train"
    objects: Literal["seed", "category", "all", "source"] = "category"
    """seed: the source demos' objects; category: the split's objects of their categories; all: every object of the
    split (each object gets a source demo of its own object, else of its category, else any); source: each attempt
    keeps its source demo's object (many sources: the flywheel's policy rollouts)"""
    envs: NonNegative = 0
    """C_aug: draw from the source's environment and the next train environments, this many in all (0: every one)"""
    poses: NonNegative = 0
    """C_aug: draw from the train poses nearest the source's, this many (0: every one)"""
    max_attempts: Count | None = None
    """stop after this many attempts even if `num` is not reached (default 5 x num)"""
    interp_steps: Count = 5
    tail_steps: NonNegative = 20
    obs_mode: str | None = None
    """record observations in this mode (default: the source's)"""

    def check(self) -> None:
        if (self.envs or self.poses) and self.split != "train":
            raise UsageError("envs" if self.envs else "poses", self.envs or self.poses,
                             f"--envs and --poses narrow the train split; the {self.split} split is a fixed list")


class _AttemptRunner:
    """One worker: an env and one `Augmenter` per source demo."""

    def __init__(self, task: str, source: str, demos: list[str], cfg: AugmentConfig):
        with open_dataset(source) as f:
            eps = [read_episode(f["data"][d]) for d in demos]
            env_args = json.loads(f["data"].attrs["env_args"])
        self.env = Recorder(make_env(env_args, cfg.obs_mode))
        self.augmenters = [Augmenter(self.env, ep, task, list(env_args["robot"]), cfg.interp_steps, cfg.tail_steps)
                           for ep in eps]
        self.sources = [f"{source}:{d}" for d in demos]

    def run(self, job: tuple[int, str, int, int, int]) -> tuple[Episode | None, dict]:
        attempt, scenario, seed, src, iteration = job
        aug = self.augmenters[src]
        t = time.perf_counter()
        ok = aug.attempt(Scenario.parse(scenario), seed)
        source = self.sources[src]
        ep = aug.env.episode(dict(generator="a_ep", source=source, flywheel_iteration=iteration,
                                  attempt=attempt)) if ok else None
        rec = dict(attempt=attempt, scenario=scenario, seed=seed, source=source, success=ok, steps=aug.steps,
                   seconds=round(time.perf_counter() - t, 3))
        return ep, rec

    def close(self) -> None:
        self.env.close()


def summarize(records: list[dict], task: str, seed_scenario: str, run_seconds: float, extra: dict) -> dict:
    """Attempts, successes, rate, demos per hour and coverage from the attempt log."""
    succ = [Scenario.parse(r["scenario"]) for r in records if r["success"]]
    tried = [Scenario.parse(r["scenario"]) for r in records]
    per_obj: dict[str, dict] = {}
    for r in records:
        o = per_obj.setdefault(Scenario.parse(r["scenario"]).object_id, dict(attempts=0, successes=0))
        o["attempts"] += 1
        o["successes"] += int(r["success"])
    for o in per_obj.values():
        o["success_rate"] = round(o["successes"] / o["attempts"], 3)
        o["interval"] = [round(x, 3) for x in wilson_interval(o["successes"], o["attempts"])]
    src = Scenario.parse(seed_scenario)

    def coverage(ss: list[Scenario]) -> dict:
        return dict(objects=len({s.object_id for s in ss}), environments=len({s.env_id for s in ss}),
                    poses=len({s.pose_id for s in ss}), scenarios=len(set(ss)))

    n, k = len(records), len(succ)
    return dict(task=task, **extra, seed_scenario=seed_scenario, attempts=n, successes=k,
                success_rate=round(k / n, 4) if n else 0.0,
                success_interval=[round(x, 4) for x in wilson_interval(k, n)], wall_seconds=round(run_seconds, 1),
                demos_per_hour=round(3600 * k / run_seconds, 1) if run_seconds else 0.0,
                attempts_per_hour=round(3600 * n / run_seconds, 1) if run_seconds else 0.0,
                mean_steps_success=round(float(np.mean([r["steps"] for r in records if r["success"]])), 1) if k else 0,
                successes_on_new_poses=sum(s.pose_id != src.pose_id for s in succ),
                coverage_successes=coverage(succ), coverage_attempts=coverage(tried),
                per_object=dict(sorted(per_obj.items())))


def generate(task: str, source: Path, out: Path, num: int, cfg: AugmentConfig = AugmentConfig(),
             demo: str | None = None, workers: int = 2, seed: int = 0, resume: bool = False, iteration: int = 0,
             progress: bool = True) -> dict:
    """A_EP of `source` (its demo `demo`, or each in turn) until `num` successes or `cfg.max_attempts` attempts, into
    `out`; `resume` continues an interrupted `out`. `iteration` is recorded in each demo's provenance. Returns the
    summary."""
    validate(cfg)
    if num < 1:
        raise UsageError("num", num, "must be >= 1")
    spec = get_task(task)
    log_path = out.with_name(out.name + ".attempts.jsonl")
    summary_path = out.with_suffix(".json")
    with open_dataset(source) as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        names = demo_names(f)
        if not names:
            raise DexError(f"{source} holds no demos", hint="record a seed with python -m generators.seed")
        if demo is not None and demo not in names:
            raise UsageError("demo", demo, f"{source} has no such demo; it has {names}")
        demos = [demo] if demo else names
        source_objects = [Scenario.parse(str(f["data"][d].attrs["scenario"])).object_id for d in demos]
        seed_ep = read_episode(f["data"][demos[0]])
    if env_args["env_name"] != spec.env_id:
        raise DexError(f"{source} holds {env_args['env_name']} demos, not {spec.env_id} ({task})",
                       hint=f"pass the {task} seed (python -m generators.seed --task {task})")
    max_attempts = cfg.max_attempts or 5 * num
    space = spec.scenario_space()
    objects = object_pool(space, cfg.split, cfg.objects, source_objects)
    if cfg.objects == "source":
        missing = sorted({o for o in source_objects if not any(s.object_id == o for s in space.scenarios(cfg.split))}) \
            if cfg.split != "train" else []
        if missing:
            raise DexError(f"--objects source: the {cfg.split} split has no scenarios with {missing}")
        objects = sorted(set(source_objects))
    envs, poses = space.around(Scenario.parse(seed_ep.scenario), cfg.envs, cfg.poses)
    extra = dict(source=f"{source}:{demo or '*'}", sources=len(demos), split=cfg.split, objects_mode=cfg.objects,
                 objects=objects, envs=len(envs), poses=len(poses), workers=workers, seed=seed)
    check_output("out", out, resume=resume)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not resume:
        log_path.unlink(missing_ok=True)

    writer_args = dict(env_args)
    if cfg.obs_mode:
        writer_args["env_kwargs"] = dict(env_args["env_kwargs"], obs_mode=cfg.obs_mode)
    writer = DatasetWriter(out, writer_args, resume=resume)
    if "generation" in writer.attrs:  # resuming: the attempts must keep meaning the same scenarios
        before = json.loads(writer.attrs["generation"])
        changed = {k: (before.get(k), v) for k, v in extra.items() if k != "workers" and before.get(k) != v}
        if changed:
            raise DexError(f"--resume with other settings than {out} was made with: "
                             + ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in changed.items()))
    records = read_jsonl(log_path)
    save_text(log_path, "".join(json.dumps(r) + "\n" for r in records))  # drop a torn last line
    logged = {r["attempt"] for r in records}
    for name, m in writer.meta.items():  # written, but killed before its log line
        a = m["provenance"].get("attempt")
        if a is not None and a not in logged:
            records.append(dict(attempt=a, scenario=m["scenario"], seed=m["seed"], success=True, steps=0, seconds=0.0,
                                run=-1, wall=0.0, demo=name))
    records.sort(key=lambda r: r["attempt"])
    successes = sum(r["success"] for r in records)
    next_attempt = max((r["attempt"] for r in records), default=-1) + 1
    run = max((r.get("run", 0) for r in records), default=-1) + 1
    prior_seconds = sum(max((r["wall"] for r in records if r.get("run") == k), default=0.0) for k in range(run))

    def jobs():
        for a in range(next_attempt, max_attempts):
            scenario, reset_seed, src = attempt_scenario(space, cfg.split, objects, seed, a,
                                                         source_objects if cfg.objects == "source" else None,
                                                         envs, poses)
            if cfg.objects != "source" and len(demos) > 1:
                src = source_for(scenario.object_id, source_objects, a)
            yield a, str(scenario), reset_seed, src, iteration

    t_start = time.perf_counter()
    bar = tqdm(total=num, initial=min(successes, num), desc=f"A_EP {task}", unit="demo", disable=not progress)
    try:
        if successes < num:
            results = executor(workers).map(_AttemptRunner, (task, str(source), demos, cfg), _AttemptRunner.run,
                                            jobs())
            for ep, rec in results:
                rec = dict(rec, run=run, wall=round(time.perf_counter() - t_start, 2), demo=None)
                if ep is not None:
                    rec["demo"] = writer.add(ep)  # the episode first, then its log line: a kill between is recovered
                    successes += 1
                    bar.update(1)
                append_jsonl(log_path, rec)
                records.append(rec)
                bar.set_postfix(attempts=len(records), rate=f"{successes / len(records):.0%}")
                if successes >= num:
                    results.close()
                    break
    finally:
        bar.close()
        seconds = prior_seconds + (time.perf_counter() - t_start)
        summary = summarize(records, task, seed_ep.scenario, seconds, extra)
        writer.attrs["generation"] = json.dumps(summary)
        done = successes >= num or len(records) >= max_attempts
        writer.close(consolidate=done)  # an interrupted run keeps its linked episode files for --resume
        save_json(summary_path, dict(summary, provenance=provenance(dict(task=task, num=num, config=cfg))))
    print(f"[augment] {task}: {summary['successes']}/{summary['attempts']} attempts succeeded "
          f"({format_rate(summary['successes'], summary['attempts'])}), {summary['demos_per_hour']:.0f} demos/h on {workers} worker(s); "
          f"coverage O={summary['coverage_successes']['objects']} E={summary['coverage_successes']['environments']} "
          f"P={summary['coverage_successes']['poses']} OxExP={summary['coverage_successes']['scenarios']}; "
          f"wrote {out} and {summary_path}")
    return summary
