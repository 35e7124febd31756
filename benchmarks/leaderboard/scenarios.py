"""The leaderboard's fixed scenario lists: for each task and split, one object|environment|pose per episode, drawn once
from the task's scenario space and committed (`scenarios.json`). Episode i of seed s plays list entry s * episodes + i
with reset seed s * 100000 + i. Each list has a hash; an entry records the hashes it was made on, and entries made on
other lists are not compared (the object library or a task's space changed under them)."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np

from dexenvs.scenarios import SPLITS
from dexenvs.tasks import get_task, task_names

FILE = Path(__file__).parent / "scenarios.json"
VERSION = "v1"
SEEDS, EPISODES = 5, 20  # 100 episodes per cell: a 95% interval of at most +-10 points at any rate


def draw(task: str, split: str, n: int = SEEDS * EPISODES, version: str = VERSION) -> list[str]:
    """The list a version draws: a pure function of the task's scenario space and the version."""
    space = get_task(task).scenario_space()
    rng = np.random.default_rng(zlib.crc32(f"{version}|{task}|{split}".encode()))
    return [str(space.sample(split, rng)) for _ in range(n)]


def list_hash(scenarios: list[str]) -> str:
    return hashlib.sha256(json.dumps(scenarios).encode()).hexdigest()[:16]


def write(path: Path = FILE, version: str = VERSION) -> Path:
    lists = {t: {s: draw(t, s, version=version) for s in SPLITS} for t in task_names()}
    path.write_text(json.dumps(dict(version=version, lists=lists), indent=1) + "\n")
    return path


def load(path: Path = FILE) -> dict:
    """{"version", "lists": {task: {split: [...]}}, "hashes": {task: {split: hash}}}."""
    data = json.loads(Path(path).read_text())
    data["hashes"] = {t: {s: list_hash(v) for s, v in d.items()} for t, d in data["lists"].items()}
    return data


if __name__ == "__main__":
    print(f"wrote {write()}")
