"""`python -m benchmarks.leaderboard run --agent SPEC [--name NAME] [--tasks grasp lift] [--splits test_oep]`: one
leaderboard entry. Every task x split the agent can play runs the fixed scenario list (`scenarios.json`) with fixed
seeds (`--seeds` x `--episodes`, 5 x 20 by default); the entry file (`entries/<name>.json`) records per-episode
outcomes, each cell's success with its interval, the scenario lists' hashes, the agent's file hash and the commit. A
cell is saved as soon as it finishes, so `--resume` continues an interrupted entry. The same entry run twice gives the
same numbers: an episode depends only on its seed, scenario and the agent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm import tqdm

import dexenvs  # noqa: F401
from benchmarks.leaderboard import scenarios as lists
from benchmarks.leaderboard.agents import AgentSpec, CellPlayer
from dexenvs.cli import Count, DexError, UsageError, check_output, run_cli
from dexenvs.executor import configure, executor
from dexenvs.rates import format_rate, wilson_interval
from dexenvs.results import provenance, save_json
from dexenvs.scenarios import SPLITS
from dexenvs.tasks import task_names

ROOT = Path(__file__).parent
Split = Literal["train", "test_objects", "test_oep"]


@dataclass
class Args:
    agent: str
    """a checkpoint path, expert, or module:factory"""
    name: str | None = None
    """the entry's name (default: the checkpoint's folder, expert, or the factory)"""
    residual: Path | None = None
    """a trained residual (python -m agents.residual) on top of a checkpoint agent"""
    tasks: tuple[str, ...] = ()
    """default: every task the agent can play"""
    splits: tuple[Split, ...] = SPLITS
    seeds: Count = lists.SEEDS
    episodes: Count = lists.EPISODES
    """per seed"""
    videos: bool = True
    """film the first episode of each cell for the page"""
    workers: Count = 2
    ray: bool = False
    """play the episodes on a local Ray instead of this machine's process pool"""
    ray_address: str | None = None
    """join the Ray cluster at host:port instead"""
    entries: Path = ROOT / "entries"
    scenarios: Path = lists.FILE
    overwrite: bool = False
    resume: bool = False
    """keep the cells an interrupted run of this entry finished"""
    progress: bool = True

    def agent_spec(self) -> AgentSpec:
        return AgentSpec(self.agent, str(self.residual) if self.residual else None)

    def entry_name(self) -> str:
        if self.name:
            return self.name
        a = self.agent_spec()
        if a.kind == "checkpoint":
            return Path(self.agent).parent.name + ("+residual" if self.residual else "")
        module, _, factory = self.agent.partition(":")
        return self.agent if a.kind == "expert" else f"{module.rsplit('.', 1)[-1]}-{factory}"

    def check(self) -> None:
        self.agent_spec().check()
        can = self.agent_spec().tasks()
        for t in self.tasks:
            if t not in task_names():
                raise UsageError("tasks", t, f"unknown task; valid: {task_names()}")
            if can is not None and t not in can:
                raise UsageError("tasks", t, f"the agent plays {can} only")
        if self.seeds * self.episodes > 100 and self.scenarios == lists.FILE:
            raise UsageError("episodes", self.episodes, f"--seeds x --episodes is at most the lists' 100 scenarios")
        if not self.scenarios.exists():
            raise UsageError("scenarios", self.scenarios, "no such scenario-list file")
        check_output("name", self.entries / f"{self.entry_name()}.json", self)


def run_entry(args: Args) -> dict:
    configure(args.ray, args.ray_address)
    agent = args.agent_spec()
    data = lists.load(args.scenarios)
    tasks = list(args.tasks) or agent.tasks() or task_names()
    name = args.entry_name()
    path = args.entries / f"{name}.json"
    entry = dict(name=name, agent=args.agent, kind=agent.kind, residual=args.residual and str(args.residual),
                 agent_hash=agent.file_hash(), scenario_version=data["version"], seeds=args.seeds,
                 episodes=args.episodes, cells={})
    if args.resume and path.exists():
        import json

        old = json.loads(path.read_text())
        if old.get("agent_hash") != entry["agent_hash"] or old.get("scenario_version") != data["version"]:
            raise DexError(f"{path} was made by another agent file or scenario version", hint="use --overwrite")
        entry["cells"] = old.get("cells", {})
    n = args.seeds * args.episodes
    for task in tasks:
        for split in args.splits:
            key = f"{task}/{split}"
            if key in entry["cells"]:
                continue
            scen = data["lists"][task][split]
            if len(scen) < n:
                raise DexError(f"the {task}/{split} list holds {len(scen)} scenarios, fewer than {n} episodes")
            jobs = [(s, i, scen[s * args.episodes + i]) for s in range(args.seeds) for i in range(args.episodes)]
            video = (args.entries.parent / "videos" / name / f"{task}-{split}") if args.videos else None
            t0 = time.perf_counter()
            rows = list(tqdm(executor(args.workers).map(CellPlayer, (agent, task, split, str(video) if video else None),
                                                        CellPlayer.play, jobs),
                             total=len(jobs), desc=f"{name} {key}", disable=not args.progress))
            k = sum(r["success"] for r in rows)
            entry["cells"][key] = dict(task=task, split=split, successes=k, episodes=len(rows),
                                       success=k / len(rows), interval=list(wilson_interval(k, len(rows))),
                                       per_seed=[sum(r["success"] for r in rows if r["seed"] == s) / args.episodes
                                                 for s in range(args.seeds)],
                                       scenario_hash=data["hashes"][task][split], seconds=round(time.perf_counter() - t0, 1),
                                       video=str(video.relative_to(args.entries.parent) / "episode.mp4") if video else None,
                                       results=rows)
            save_json(path, dict(entry, provenance=provenance(args)))  # each finished cell is kept
            print(f"[leaderboard] {name} {key}: {format_rate(k, len(rows))} ({time.perf_counter() - t0:.0f} s)")
    save_json(path, dict(entry, provenance=provenance(args)))
    print(f"[leaderboard] wrote {path}")
    return entry


main = run_entry

if __name__ == "__main__":
    run_cli(main, Args)
