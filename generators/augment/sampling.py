"""Where A_EP's attempts go: the objects a source is carried onto, which source each attempt carries, and each
attempt's scenario and reset seed, a pure function of (seed, attempt) so results do not depend on the workers."""

from __future__ import annotations

import numpy as np

from assets import objects as obj_lib
from dexenvs.scenarios import Scenario


def object_pool(space, split: str, mode: str, seed_objects: list[str]) -> list[str]:
    """The objects A_EP carries the source demos onto: the seeds' own (`seed`), every object of their categories
    (`category`) or of the split (`all`); `source` keeps each demo's object."""
    pool = space.train_objects if split == "train" else space.test_objects
    if mode == "source":  # each attempt keeps its source demo's object (the flywheel's rollouts bring the objects)
        return []
    if mode == "seed":
        objs = [o for o in dict.fromkeys(seed_objects) if o in pool]
        if not objs:
            raise ValueError(f"--objects seed: the seed's objects {sorted(set(seed_objects))} are not in the {split} "
                             f"split; use --objects category or all")
        return objs
    if mode == "category":
        cats = sorted({obj_lib.get_spec(o).category for o in seed_objects})
        pool = [o for o in pool if obj_lib.get_spec(o).category in cats]
        if not pool:
            raise ValueError(f"--objects category: the {split} split has no {' or '.join(cats)} objects; "
                             f"use --objects all")
    return list(pool)


def source_for(obj: str, source_objects: list[str], attempt: int) -> int:
    """Which source demo attempt `attempt` carries onto `obj`: one of `obj`'s own demos, else one of its category's,
    else any, in turn by attempt number. With several seeds (one per category) each is carried onto its own
    category: a wide box's lift does not lift a tray."""
    cat = obj_lib.get_spec(obj).category
    for match in (lambda o: o == obj, lambda o: obj_lib.get_spec(o).category == cat, lambda o: True):
        idx = [k for k, o in enumerate(source_objects) if match(o)]
        if idx:
            return idx[attempt % len(idx)]
    raise ValueError("no source demos")


def attempt_scenario(space, split: str, objects: list[str], seed: int, attempt: int,
                     sources: list[str] | None = None, envs: list[str] | None = None,
                     poses: list[int] | None = None) -> tuple[Scenario, int, int]:
    """Attempt k's scenario, reset seed and source demo (an index into the sources' objects): a pure function of
    (seed, k). With `sources` (each source demo's object), the attempt's object is its source's; `envs` and `poses`
    narrow the train split (default: all of it)."""
    ss = np.random.SeedSequence([seed, attempt])
    rng = np.random.default_rng(ss)
    reset_seed = int(ss.generate_state(1)[0] & 0x7FFFFFFF)
    src = 0
    if sources:
        # every source once per round of len(sources) attempts, in an order fixed by (seed, round): drawn with
        # replacement, a source held by a single rollout can go undrawn, and its object then misses the dataset
        n = len(sources)
        src = int(np.random.default_rng([seed, attempt // n, n]).permutation(n)[attempt % n])
        objects = [sources[src]]
    return _scenario(space, split, objects, rng, envs, poses), reset_seed, src


def _scenario(space, split: str, objects: list[str], rng, envs: list[str] | None = None,
              poses: list[int] | None = None) -> Scenario:
    if split == "train":
        return Scenario(str(rng.choice(objects)), str(rng.choice(envs or space.train_envs)),
                        int(rng.choice(poses or space.train_poses)))
    pool = [s for s in space.scenarios(split) if s.object_id in objects]
    if not pool:
        raise ValueError(f"the {split} split has no scenario with objects {objects}")
    return pool[rng.integers(len(pool))]
