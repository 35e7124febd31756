"""`python -m generators.transitions --objects cube_00 cylinder_00 --per-object 64`: executed grasp-to-grasp transitions,
the data the DexGen controller trains on (DexterityGen's simulated M-RRT edges).

Each job starts DexRegrasp-v0 in grasp `src` of an object's set with the neighbouring grasp `dst` as its goal (a kNN
neighbour within `max_dist` in pose distance) and a train wrist orientation, and lets the planner expert
(`dexenvs.experts.regrasp`) drive the joints there with the object held. An edge is kept as executed when the object
arrives within the success tolerance. Every attempt is written to one dataset in the project's format (absolute joint
targets as actions, keypoints / object / goal in the hand frame as observations, object and goal poses as datagen info,
`success` per demo), and each object's executed edges to `<robot>-<object>.edges.npz`, which the planner expert then
walks instead of untried kNN edges. With `--goals N` an attempt goes on from each goal it reaches to a new nearby one
(the env draws it), N in a row: DexGen's transition sequences, the longer motion the DexGen controller learns from.
A killed run resumes where it stopped: each demo records its job.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from dexenvs.cli import Count, NonNegative, Positive, UsageError, check_output, run_cli
from dexenvs.executor import executor
from dexenvs.experts import rollout
from dexenvs.experts.regrasp import RegraspPlanner, edges_path
from dexenvs.grasps import GraspSet
from dexenvs.rates import format_rate
from dexenvs.results import atomic_write, provenance, save_json
from dexenvs.tasks.regrasp import GRASP_DIR, DexRegraspEnv, grasp_set_path
from dexenvs.trajectory import DatasetWriter, Recorder, env_args_of, open_dataset
from dexenvs.trajectory.dataset import demo_names

ENV_ID = DexRegraspEnv.env_id
ROBOT = DexRegraspEnv.default_robots[0]


@dataclass(frozen=True)
class TransitionConfig:
    objects: tuple[str, ...] = ()
    """objects whose grasp sets to connect; default: DexRegrasp-v0's train objects"""
    per_object: int = 64
    """edges attempted per object"""
    out: Path = Path("runs/transitions")
    grasp_dir: Path = GRASP_DIR
    min_dist: float = 1.0
    max_dist: float = 4.0
    """pose distance (1 = 1 cm or 0.1 rad) between an edge's grasps: DexRegrasp-v0's goal range"""
    steps: int = 40
    """control steps an attempt may take"""
    goals: int = 1
    """goals in a row per attempt: 1 records single edges (and the executed-edges files); more records the planner
    going on from each goal it reaches to a new nearby one (DexGen's transition sequences)"""
    seed: int = 0
    workers: int = 2

    def dataset(self) -> Path:
        return self.out / "transitions.hdf5"


def default_objects(grasp_dir: Path = GRASP_DIR) -> list[str]:
    space = DexRegraspEnv.scenario_space()
    return [o for o in space.train_objects if grasp_set_path(ROBOT, o, grasp_dir).exists()]


def check_objects(objects, grasp_dir: Path) -> None:
    space = DexRegraspEnv.scenario_space()
    valid = space.train_objects + space.test_objects
    for o in objects:
        if o not in valid:
            raise UsageError("objects", o, f"not a DexRegrasp-v0 object; valid: {valid}")
        if not grasp_set_path(ROBOT, o, grasp_dir).exists():
            raise UsageError("objects", o, f"has no grasp set in {grasp_dir}; build it with `python -m "
                                           f"generators.grasps --object {o}` or pick from {default_objects(grasp_dir)}")


def edge_jobs(cfg: TransitionConfig) -> list[dict]:
    """The edges to try, a fixed function of the config: per object, `per_object` kNN pairs in the distance range,
    each with a train environment and wrist orientation."""
    space = DexRegraspEnv.scenario_space()
    jobs = []
    for oi, obj in enumerate(cfg.objects or default_objects(cfg.grasp_dir)):
        gs = GraspSet.load(grasp_set_path(ROBOT, obj, cfg.grasp_dir))
        if "knn" not in gs.arrays:
            gs = gs.with_knn()
        src, col = np.nonzero((gs.knn_dist >= cfg.min_dist) & (gs.knn_dist <= cfg.max_dist))
        rng = np.random.default_rng([cfg.seed, oi])
        pick = rng.permutation(len(src))[: cfg.per_object]
        for k in pick:
            s = int(src[k])
            jobs.append(dict(object=obj, src=s, dst=int(gs.knn[s, col[k]]), dist=float(gs.knn_dist[s, col[k]]),
                             env=str(space.train_envs[rng.integers(len(space.train_envs))]),
                             pose=int(space.train_poses[rng.integers(len(space.train_poses))])))
    for j, job in enumerate(jobs):
        job["job"] = j
    return jobs


class _Worker:
    def __init__(self, cfg: TransitionConfig, first: str):
        self.cfg = cfg
        self.env = Recorder(gym.make(ENV_ID, control_mode="pd_joint_pos", goals_per_episode=cfg.goals, grasp_dir=cfg.grasp_dir,
                                     scenario=first).unwrapped)
        self.planner = RegraspPlanner(self.env, use_edges=False)

    def close(self):
        self.env.close()


def _setup(cfg: TransitionConfig, first: str) -> _Worker:
    return _Worker(cfg, first)


def _run(w: _Worker, job: dict):
    options = dict(scenario=f"{job['object']}|{job['env']}|p{job['pose']}", start_grasp=job["src"],
                   goal_grasp=job["dst"])
    env = w.env
    env.reset(seed=w.cfg.seed * 1_000_003 + job["job"], options=options)
    w.planner.reset()
    for _ in range(w.cfg.steps):
        action, _ = w.planner.act()
        _, _, _, _, info = env.step(action)
        if bool(info["success"][0]) or bool(info["fail"][0]):
            break
    return env.episode(dict(generator="transitions", edge=job), phases=["regrasp"] * len(env._steps))


def write_edges(cfg: TransitionConfig, dataset: Path) -> dict[str, dict]:
    """Each object's executed edges from the dataset's demos, written beside the grasp sets' names in `out`."""
    per: dict[str, list] = {}
    with open_dataset(dataset) as f:
        for n in demo_names(f):
            g = f["data"][n]
            e = json.loads(g.attrs["provenance"])["edge"]
            per.setdefault(e["object"], []).append((e["src"], e["dst"], bool(g.attrs["success"]), int(g.attrs["num_samples"])))
    stats = {}
    for obj, rows in per.items():
        a = np.array(rows, dtype=np.int64)
        path = edges_path(cfg.out / f"{ROBOT}-{obj}.npz")
        with atomic_write(path) as tmp:
            np.savez(tmp, src=a[:, 0], dst=a[:, 1], ok=a[:, 2].astype(bool), steps=a[:, 3])
        stats[obj] = dict(tried=len(rows), executed=int(a[:, 2].sum()))
    return stats


def build_transitions(cfg: TransitionConfig, resume: bool = False, progress: bool = True) -> dict:
    from tqdm import tqdm

    jobs = edge_jobs(cfg)
    if not jobs:
        raise UsageError("objects", list(cfg.objects), "no kNN edges in the distance range; widen --max-dist")
    cfg.out.mkdir(parents=True, exist_ok=True)
    first = f"{jobs[0]['object']}|{jobs[0]['env']}|p{jobs[0]['pose']}"
    probe = gym.make(ENV_ID, control_mode="pd_joint_pos", goals_per_episode=cfg.goals, grasp_dir=cfg.grasp_dir,
                     scenario=first)
    args = env_args_of(probe)
    probe.close()
    writer = DatasetWriter(cfg.dataset(), args, resume=resume)
    done = {m["provenance"]["edge"]["job"] for m in writer.meta.values()}
    todo = [j for j in jobs if j["job"] not in done]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="transitions", disable=not progress)
    ok = sum(m["success"] for m in writer.meta.values())
    try:
        for ep in executor(cfg.workers).map(_setup, (cfg, first), _run, todo):
            writer.add(ep)
            ok += ep.success
            bar.update(1)
            bar.set_postfix(executed=ok)
    finally:
        bar.close()
        writer.attrs["transitions"] = json.dumps(provenance(json.loads(json.dumps(asdict(cfg), default=str))))
        writer.close()
    if cfg.goals == 1:
        stats = write_edges(cfg, cfg.dataset())
        n = sum(s["tried"] for s in stats.values())
        k = sum(s["executed"] for s in stats.values())
    else:  # sequences: an attempt succeeds when it reached all its goals
        stats, n, k = {}, len(jobs), ok
    report = dict(edges=n, executed=k, rate=format_rate(k, n), objects=stats, dataset=str(cfg.dataset()))
    save_json(cfg.out / "report.json", dict(report, provenance=provenance(json.loads(json.dumps(asdict(cfg), default=str)))))
    return report


@dataclass
class Args:
    objects: tuple[str, ...] = ()
    """default: DexRegrasp-v0's train objects that have grasp sets"""
    per_object: Count = 64
    out: Path = Path("runs/transitions")
    grasp_dir: Path = GRASP_DIR
    min_dist: NonNegative = 1.0
    max_dist: Positive = 4.0
    steps: Count = 40
    goals: Count = 1
    """goals in a row per attempt; more than 1 records transition sequences (no executed-edges files)"""
    seed: NonNegative = 0
    workers: Count = 2
    resume: bool = False
    """add the missing edges to an existing run"""

    def config(self) -> TransitionConfig:
        return TransitionConfig(objects=tuple(self.objects), per_object=self.per_object, out=self.out,
                                grasp_dir=self.grasp_dir, min_dist=self.min_dist, max_dist=self.max_dist,
                                steps=self.steps, goals=self.goals, seed=self.seed, workers=self.workers)

    def check(self) -> None:
        if self.min_dist >= self.max_dist:
            raise UsageError("min-dist", self.min_dist, f"must be below --max-dist ({self.max_dist})")
        check_objects(self.objects, self.grasp_dir)
        check_output("out", self.config().dataset(), self)


def main(args: Args) -> dict:
    report = build_transitions(args.config(), resume=args.resume)
    what = "edges executed" if args.goals == 1 else f"sequences reached all {args.goals} goals"
    print(f"[transitions] {report['rate']} {what}; wrote {report['dataset']}"
          + (" and the edges beside it" if args.goals == 1 else ""))
    return report


if __name__ == "__main__":
    run_cli(main, Args)
