"""The scenario model shared by every task: a scenario is (object O, environment E, pose P).

Each task owns a `ScenarioSpace` built from its object categories and workspace. Membership in the splits is a pure
function of the ids, so it is the same on every machine and in every process:

- objects: within each category (ids sorted), every 4th object (index % 4 == 3) is held out for testing;
- environments: every 4th environment of the library is held out;
- poses: ids 0..n_train_poses-1 are training poses, ids from TEST_POSE_OFFSET on are test poses; pose id -> (x, y, yaw)
  is drawn from a generator seeded by (task, pose id) inside the task's workspace.

Splits: `train` = train objects x train environments x train poses (sampled uniformly);
`test_objects` (T_O) = each held-out object in the fixed environment and pose `(train_envs[0], pose 0)`;
`test_oep` (T_OEP) = 40 fixed configurations whose object, environment and pose are all held out.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from assets import environments as env_lib
from assets import objects as obj_lib

SPLITS = ("train", "test_objects", "test_oep")
TEST_POSE_OFFSET = 10_000
N_TEST_OEP = 40


@dataclass(frozen=True)
class Scenario:
    object_id: str
    env_id: str
    pose_id: int

    def as_dict(self) -> dict:
        return dict(object_id=self.object_id, env_id=self.env_id, pose_id=self.pose_id)

    def __str__(self) -> str:
        return f"{self.object_id}|{self.env_id}|p{self.pose_id}"

    @classmethod
    def parse(cls, value) -> "Scenario":
        """Accepts a Scenario, a dict with object_id/env_id/pose_id, a 3-tuple, or the string form 'obj|env|p3'."""
        if isinstance(value, Scenario):
            return value
        if isinstance(value, dict):
            missing = {"object_id", "env_id", "pose_id"} - set(value)
            if missing:
                raise ValueError(f"scenario dict is missing {sorted(missing)}; it needs object_id, env_id, pose_id")
            return cls(str(value["object_id"]), str(value["env_id"]), int(value["pose_id"]))
        if isinstance(value, str):
            parts = value.split("|")
            if len(parts) != 3 or not parts[2].lstrip("p").lstrip("-").isdigit():
                raise ValueError(f"cannot parse scenario {value!r}; expected 'object_id|env_id|p<pose_id>'")
            return cls(parts[0], parts[1], int(parts[2].lstrip("p")))
        if isinstance(value, (tuple, list)) and len(value) == 3:
            return cls(str(value[0]), str(value[1]), int(value[2]))
        raise TypeError(f"cannot interpret {value!r} as a scenario; give a Scenario, dict, (object, env, pose) or 'o|e|pN'")


def _held_out(ids: list[str], every: int = 4) -> tuple[list[str], list[str]]:
    train, test = [], []
    for i, x in enumerate(sorted(ids)):
        (test if i % every == every - 1 else train).append(x)
    return train, test


@dataclass(frozen=True)
class Workspace:
    """Where a task places its object: x, y ranges (m, table frame) and a yaw range (rad)."""

    x: tuple[float, float]
    y: tuple[float, float]
    yaw: tuple[float, float] = (-np.pi, np.pi)


class ScenarioSpace:
    def __init__(self, task: str, categories: Iterable[str], workspace: Workspace, n_train_poses: int = 50,
                 n_test_poses: int = 20):
        self.task = task
        self.workspace = workspace
        self.categories = tuple(categories)
        objs = obj_lib.object_ids(self.categories)
        by_cat: dict[str, list[str]] = {}
        for o in objs:
            by_cat.setdefault(obj_lib.get_spec(o).category, []).append(o)
        self.train_objects, self.test_objects = [], []
        for cat in self.categories:
            tr, te = _held_out(by_cat.get(cat, []))
            self.train_objects += tr
            self.test_objects += te
        self.train_envs, self.test_envs = _held_out(list(env_lib.ENVIRONMENTS))
        self.train_poses = list(range(n_train_poses))
        self.test_poses = list(range(TEST_POSE_OFFSET, TEST_POSE_OFFSET + n_test_poses))
        rng = np.random.default_rng(zlib.crc32(f"{task}/test_oep".encode()))
        self._test_oep = [
            Scenario(self.test_objects[rng.integers(len(self.test_objects))], self.test_envs[rng.integers(len(self.test_envs))],
                     int(self.test_poses[rng.integers(len(self.test_poses))]))
            for _ in range(N_TEST_OEP)
        ]
        self._test_o = [Scenario(o, self.train_envs[0], self.train_poses[0]) for o in self.test_objects]

    # --- membership -------------------------------------------------------------------------------------------------
    def scenarios(self, split: str) -> list[Scenario]:
        """The finite splits as lists (test_objects, test_oep); `train` is too large to list and raises."""
        self._check_split(split)
        if split == "test_objects":
            return list(self._test_o)
        if split == "test_oep":
            return list(self._test_oep)
        raise ValueError("the train split is sampled, not listed; use sample('train', rng) or contains()")

    def contains(self, split: str, s: Scenario) -> bool:
        self._check_split(split)
        if split == "train":
            return s.object_id in self.train_objects and s.env_id in self.train_envs and s.pose_id in self.train_poses
        return s in (self._test_o if split == "test_objects" else self._test_oep)

    def sample(self, split: str, rng: np.random.Generator) -> Scenario:
        self._check_split(split)
        if split == "train":
            return Scenario(self.train_objects[rng.integers(len(self.train_objects))],
                            self.train_envs[rng.integers(len(self.train_envs))],
                            int(self.train_poses[rng.integers(len(self.train_poses))]))
        pool = self._test_o if split == "test_objects" else self._test_oep
        return pool[rng.integers(len(pool))]

    def around(self, center: Scenario, envs: int = 0, poses: int = 0) -> tuple[list[str], list[int]]:
        """A slice of the train split's environments and poses grown around `center` (DexFlyWheel's C_aug^i, which
        widens every iteration): `center`'s environment and the train environments after it in library order, `envs` in
        all; the `poses` train poses nearest `center`'s (x and y over the workspace's extent, yaw over pi). 0 takes all."""
        if envs < 0 or poses < 0:
            raise ValueError(f"envs and poses must be >= 0 (0: all), got envs={envs}, poses={poses}")
        # 0 keeps the split's own order, so a draw from "all" picks what an unnarrowed draw picks
        e, p = list(self.train_envs), list(self.train_poses)
        if envs:
            k = e.index(center.env_id) if center.env_id in e else 0
            e = (e[k:] + e[:k])[:envs]
        if poses:
            x0, y0, yaw0 = self.pose(center.pose_id)
            w = self.workspace

            def dist(q: int) -> float:
                x, y, yaw = self.pose(q)
                dyaw = (yaw - yaw0 + np.pi) % (2 * np.pi) - np.pi
                return float(np.hypot((x - x0) / max(w.x[1] - w.x[0], 1e-9), (y - y0) / max(w.y[1] - w.y[0], 1e-9))
                             + abs(dyaw) / np.pi)

            p = sorted(p, key=lambda q: (dist(q), q))[:poses]
        return e, p

    def validate(self, s: Scenario) -> Scenario:
        if s.object_id not in obj_lib.OBJECTS:
            raise ValueError(f"unknown object id {s.object_id!r}; valid ids for {self.task}: "
                             f"{self.train_objects + self.test_objects}")
        if obj_lib.get_spec(s.object_id).category not in self.categories and obj_lib.get_spec(s.object_id).source == "procedural":
            raise ValueError(f"object {s.object_id!r} ({obj_lib.get_spec(s.object_id).category}) is not used by {self.task}; "
                             f"valid categories: {list(self.categories)}")
        if s.env_id not in env_lib.ENVIRONMENTS:
            raise ValueError(f"unknown environment id {s.env_id!r}; valid: {list(env_lib.ENVIRONMENTS)}")
        if not (0 <= s.pose_id < len(self.train_poses) or TEST_POSE_OFFSET <= s.pose_id < TEST_POSE_OFFSET + len(self.test_poses)):
            raise ValueError(f"unknown pose id {s.pose_id}; valid: 0..{len(self.train_poses) - 1} (train) and "
                             f"{TEST_POSE_OFFSET}..{TEST_POSE_OFFSET + len(self.test_poses) - 1} (test)")
        return s

    def pose(self, pose_id: int) -> tuple[float, float, float]:
        """(x, y, yaw) of a pose id, deterministic per task."""
        rng = np.random.default_rng(zlib.crc32(f"{self.task}/pose/{pose_id}".encode()))
        w = self.workspace
        return float(rng.uniform(*w.x)), float(rng.uniform(*w.y)), float(rng.uniform(*w.yaw))

    @staticmethod
    def _check_split(split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
