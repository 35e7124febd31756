"""Building one object's grasp set: seeds by heuristic sampling, RRT rounds fanned out over the executor, each round's
new grasps validated in SAPIEN and written as its own chunk (atomically), so a killed build resumes at the next round
without duplicates; the final set keeps the validated grasps with their kNN graph."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from assets import objects as obj_lib
from dexenvs.cli import DexError, UsageError
from dexenvs.executor import executor
from dexenvs.grasps import GraspSet
from dexenvs.results import provenance, save_json
from generators.grasps.hand import hand_model
from generators.grasps.sampling import Candidates, expand, sample_grasps
from generators.grasps.shape import ObjectShape
from generators.grasps.validate import Validator, squeeze_targets

VALIDATE_BATCH = 8
SCREEN = 0.25  # the screening simulation's share of the full hold test
MAX_SIZE = 0.09  # m, the longest side an Allegro grasp set is built for: larger spans the palm and the four fingers


@dataclass(frozen=True)
class GraspConfig:
    object_id: str
    num: int = 1000
    """stop once this many grasps are validated"""
    out: Path = Path("runs/grasps")
    robot: str = "allegro_hand_right"
    seeds: int = 32
    """stage-1 grasps the RRT starts from"""
    round_size: int = 64
    """RRT extensions per round (one job)"""
    squeeze: float = 0.003
    duration: float = 1.0
    max_move: float = 0.01
    max_turn: float = 0.1
    max_penetration: float = 0.001
    seed: int = 0
    workers: int = 2
    max_rounds: int = 10_000
    knn: int = 16

    def paths(self) -> tuple[Path, Path, Path]:
        stem = self.out / f"{self.robot}-{self.object_id}"
        return stem.with_suffix(".npz"), stem.with_suffix(".parts"), stem.with_suffix(".report.json")


def check_object(object_id: str) -> None:
    if object_id not in obj_lib.OBJECTS:
        raise UsageError("object", object_id, f"unknown object; in-hand sized: {inhand_objects()}")
    asset = obj_lib.get_object(object_id)
    ext = asset.extents
    import trimesh

    if not trimesh.load(asset.visual_file, force="mesh").is_watertight:
        raise UsageError("object", object_id, "its mesh is not watertight (an open or broken surface): contacts, "
                                              "normals and penetration on it mean nothing; repair it first (e.g. "
                                              "trimesh.repair.fill_holes) and register it again")
    if max(ext) > MAX_SIZE:
        raise UsageError("object", object_id, f"{max(ext) * 100:.1f} cm long: too large for the hand (at most "
                                              f"{MAX_SIZE * 100:.0f} cm); in-hand sized: {inhand_objects()}")


def inhand_objects() -> list[str]:
    return [o for o, s in obj_lib.OBJECTS.items() if s.category in ("cube", "cylinder", "ball")]


def _arrays(c: Candidates) -> dict[str, np.ndarray]:
    from scipy.spatial.transform import Rotation

    return dict(q=c.q.numpy(), obj_pos=c.t.numpy(),
                obj_quat=Rotation.from_matrix(c.R.numpy().astype(np.float64)).as_quat(scalar_first=True).astype(np.float32),
                fingers=c.fingers.numpy(), contacts=c.contacts.numpy(), normals=c.normals.numpy(),
                penetration=c.penetration.numpy())


def _candidates(a: dict) -> Candidates:
    from scipy.spatial.transform import Rotation

    R = Rotation.from_quat(a["obj_quat"], scalar_first=True).as_matrix().astype(np.float32)
    return Candidates(torch.as_tensor(a["q"]), torch.as_tensor(a["obj_pos"]), torch.as_tensor(R),
                      torch.as_tensor(a["fingers"]), torch.as_tensor(a["contacts"]), torch.as_tensor(a["normals"]),
                      torch.as_tensor(a["penetration"]))


class _Worker:
    def __init__(self, cfg: GraspConfig):
        self.cfg = cfg
        self.hand = hand_model(cfg.robot)
        self.shape = ObjectShape(cfg.object_id)
        # a few grasps per scene: most of a round's extensions fail before validation, and a slot left empty still
        # simulates its hand
        self.validator = Validator(cfg.robot, cfg.object_id, batch=VALIDATE_BATCH)


def _setup(cfg: GraspConfig) -> _Worker:
    return _Worker(cfg)


def _validate(w: _Worker, c: Candidates, targets: torch.Tensor, duration: float) -> dict[str, np.ndarray]:
    res = dict(hold_move=np.zeros(0), hold_turn=np.zeros(0))
    for s in range(0, len(c), VALIDATE_BATCH):
        part = c.select(torch.arange(s, min(s + VALIDATE_BATCH, len(c))))
        held = w.validator.run(part, targets[s: s + VALIDATE_BATCH], duration)
        res = {k: np.concatenate([res[k], held[k]]) for k in res}
    return res


def _round(w: _Worker, job: tuple[int, dict]) -> dict:
    """One RRT round from `tree`, its new grasps validated."""
    r, tree = job
    cfg = w.cfg
    rng = np.random.default_rng([cfg.seed, r])
    t0 = time.perf_counter()
    new, counts = expand(w.hand, w.shape, _candidates(tree), cfg.round_size, rng, max_penetration=cfg.max_penetration)
    t1 = time.perf_counter()
    out = _arrays(new)
    targets = squeeze_targets(w.hand, new, cfg.squeeze) if len(new) else new.q
    out["target"] = targets.numpy()
    # most candidates that fail drop their object at once: a short screen first, the full test for the rest
    screen = _validate(w, new, targets, SCREEN * cfg.duration)
    alive = torch.as_tensor(np.nonzero((screen["hold_move"] < cfg.max_move) & (screen["hold_turn"] < cfg.max_turn))[0])
    full = _validate(w, new.select(alive), targets[alive], cfg.duration)
    res = {k: screen[k].copy() for k in screen}
    for k in res:
        res[k][alive.numpy()] = full[k]
    out.update(hold_move=res["hold_move"].astype(np.float32), hold_turn=res["hold_turn"].astype(np.float32))
    counts["validated"] = int(((res["hold_move"] < cfg.max_move) & (res["hold_turn"] < cfg.max_turn)).sum())
    return dict(round=r, arrays=out, counts=counts, plan_s=t1 - t0, validate_s=time.perf_counter() - t1)


def so3_coverage(quat: np.ndarray, cells: int = 6) -> float:
    """Fraction of SO(3) bins holding at least one of these orientations: quaternions (w >= 0) on a grid of `cells`
    per axis, against the bins that uniform random rotations reach."""
    from scipy.spatial.transform import Rotation

    def bins(q):
        q = np.where(q[:, :1] < 0, -q, q)
        return {tuple(b) for b in np.floor((q + 1) / 2 * cells).clip(0, cells - 1).astype(int)}

    reachable = bins(Rotation.random(200_000, random_state=0).as_quat(scalar_first=True))
    return len(bins(quat) & reachable) / len(reachable)


def build_grasp_set(cfg: GraspConfig, progress: bool = True) -> dict:
    """Builds (or resumes) the set; returns the report."""
    check_object(cfg.object_id)
    final, parts, report_path = cfg.paths()
    parts.mkdir(parents=True, exist_ok=True)
    settings = json.loads(json.dumps(asdict(cfg), default=str))
    hand, shape = hand_model(cfg.robot), ObjectShape(cfg.object_id)
    seed_file = parts / "seeds.npz"
    t_start = time.perf_counter()
    if seed_file.exists():
        seeds = GraspSet.load(seed_file)
        stage1 = seeds.meta["counts"]
    else:
        rng = np.random.default_rng([cfg.seed, 10**6])
        found, stage1, tries = [], dict(contact_sets=0, net_force=0, ik=0, collision_free=0), 0
        while sum(len(f) for f in found) < cfg.seeds:
            tries += 1
            if tries > 40:
                raise DexError(f"object {cfg.object_id}: no kinematically feasible grasp in {stage1['contact_sets']} "
                               f"contact sets", hint="is it in reach of the hand's fingers?")
            c, counts = sample_grasps(hand, shape, 256, rng, max_penetration=cfg.max_penetration)
            for k in stage1:
                stage1[k] += counts[k]
            if c is not None and len(c):
                found.append(c)
        a = _arrays(Candidates.cat(found))
        a.update(hold_move=np.zeros(len(a["q"]), np.float32), hold_turn=np.zeros(len(a["q"]), np.float32),
                 target=a["q"].copy())
        seeds = GraspSet(a, dict(counts=stage1, seconds=time.perf_counter() - t_start))
        seeds.save(seed_file)
    done = sorted(parts.glob("round_*.npz"))
    chunks = [GraspSet.load(p) for p in done]

    def tree() -> dict:
        sets = [seeds] + chunks
        return {k: np.concatenate([s.arrays[k] for s in sets]) for k in ("q", "obj_pos", "obj_quat", "fingers",
                                                                            "contacts", "normals", "penetration")}

    def validated() -> int:
        return sum(int(((c.hold_move < cfg.max_move) & (c.hold_turn < cfg.max_turn)).sum()) for c in chunks)

    from tqdm import tqdm

    bar = tqdm(total=cfg.num, initial=min(validated(), cfg.num), desc=f"grasps {cfg.object_id}", disable=not progress)
    ex = executor(cfg.workers)
    start_round = len(chunks)
    t_rounds = time.perf_counter()

    def jobs():
        r = start_round
        while validated() < cfg.num and r < cfg.max_rounds:
            yield (r, tree())
            r += 1

    try:
        for res in ex.map(_setup, (cfg,), _round, jobs()):
            chunk = GraspSet(res["arrays"], dict(counts=res["counts"], plan_s=res["plan_s"], validate_s=res["validate_s"]))
            chunk.save(parts / f"round_{res['round']:05d}.npz")
            chunks.append(chunk)
            bar.update(min(res["counts"]["validated"], cfg.num - bar.n))
            if validated() >= cfg.num:
                break
    finally:
        ex.shutdown()
        bar.close()
    wall = time.perf_counter() - t_rounds
    allc = {k: np.concatenate([c.arrays[k] for c in chunks]) for k in chunks[0].arrays} if chunks else None
    if allc is None:
        raise DexError(f"object {cfg.object_id}: no RRT round ran", hint="raise --num or --max-rounds")
    ok = (allc["hold_move"] < cfg.max_move) & (allc["hold_turn"] < cfg.max_turn)
    keep = {k: v[ok][: cfg.num] for k, v in allc.items()}
    n_new_rounds = len(chunks) - start_round
    counts = {k: sum(c.meta["counts"][k] for c in chunks) for k in chunks[0].meta["counts"]}
    report = dict(object=cfg.object_id, robot=cfg.robot, grasps=int(len(keep["q"])), stage1=stage1, rrt=counts,
                  acceptance=dict(contacts_fixed=counts["contacts_fixed"] / max(counts["extensions"], 1),
                                  collision_free=counts["collision_free"] / max(counts["extensions"], 1),
                                  net_force=counts["net_force"] / max(counts["extensions"], 1),
                                  validated=counts["validated"] / max(counts["net_force"], 1)),
                  rates=dict(rounds_timed=n_new_rounds, wall_s=wall,
                             candidates_per_s=sum(c.meta["counts"]["net_force"] for c in chunks[start_round:]) / max(wall, 1e-9),
                             validated_per_s=sum(c.meta["counts"]["validated"] for c in chunks[start_round:]) / max(wall, 1e-9)),
                  coverage_so3=so3_coverage(keep["obj_quat"]) if len(keep["q"]) else 0.0,
                  penetration_mm=dict(mean=float(keep["penetration"].mean() * 1e3) if len(keep["q"]) else None,
                                      max=float(keep["penetration"].max() * 1e3) if len(keep["q"]) else None),
                  hold=dict(move_mm_mean=float(keep["hold_move"].mean() * 1e3) if len(keep["q"]) else None,
                            turn_rad_mean=float(keep["hold_turn"].mean()) if len(keep["q"]) else None))
    if len(keep["q"]) >= 2:
        GraspSet(keep, dict(provenance(settings), object=cfg.object_id, robot=cfg.robot)).with_knn(cfg.knn).save(final)
    save_json(report_path, dict(report, provenance=provenance(settings)))
    return report
