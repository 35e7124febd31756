"""The self-improving data flywheel (DexFlyWheel sec. 4-5) on dexsuite's envs, generators and agents:

    python -m generators.flywheel --task handover --iters 3 [--quick] [--variant flywheel|replay_only|no_residual|no_aep]
        [--seed-scenarios SCENARIO ... | draw] [--cover True|False]

Warm-up: the task's seed demos -> A_EP (environment and pose variation, the seeds' objects) -> D_1. By default a task
starts from one scripted seed per category of its objects (SEED_SCENARIOS; `--seed-scenarios draw`: one drawn seed, as
DexFlyWheel's single demo), because one seed's carried motion does not reach another category (the lift's wide box
and tray). The environments and poses A_EP draws from widen every iteration (`--envs`, `--poses`: C_aug^i), as
DexFlyWheel's do. Iteration i = 1..iters, over object sets O_1 (the seeds' objects) c O_2 (their categories: similar
shapes) c O_3 (every training object of the task: diverse shapes and physical properties); A_EP carries each seed onto
its own category.
1. data:     D_i (i > 1) = A_EP over the last iteration's successful rollouts, each carried to new environments and
             poses with its own object (`--trajectories`: 20 / 100 / 500; `--smooth` low-passes them first;
             each rollout's grasp is carried on its category seed's motion (`--rollout-motion seed`, the default;
             `executed`: the rollout's own actions, DexFlyWheel's rule); `--cover` (default COVER[task]) also carries
             the seed onto each object of O_i that no kept rollout holds);
2. train:    the diffusion base policy on D_i;
3. residual: residual RL on the frozen base over O_(i+1) in the seed's environment and pose, where the rollouts go
             (the last iteration: every train object, environment and pose), with SAC or PPO and progressive
             exploration (agents.residual), at the alpha (0 to --alpha) that succeeds most on validation episodes there
             if it beats the base's by more than one standard error, else 0;
4. eval:     base and combined policies on T_O^i (O_i in the seed's environment and pose) and T_OEP (40 held-out
             object x environment x pose configurations), `--eval-seeds` seeds;
5. rollout:  the combined policy on O_(i+1) in the seed's environment and pose; successes with a firm grasp are kept
             (D_O^i; `--max-slip`: the object slid at most 1 cm in the hand while carried).
Then `report.md` (DexFlyWheel's Table 1: O, E, P, configurations, trajectories, SR on T_O base -> combined, SR on
T_OEP), `report.png` (diversity and success per iteration) and `report.json` with every figure and stage time.

Variants (same CLI, their own run directory): `replay_only` (DexMimicGen: A_EP from the seed onto O_i, no policy in
the loop), `no_residual` (rollouts by the base policy), `no_aep` (the rollouts themselves are D_(i+1): no environment
or pose variation added). `--quick` shrinks every stage (and uses the fast BC base) to run end to end in minutes.

Every stage records itself in `<out>/state.json` when it finishes; running the same command again skips finished stages
and continues the interrupted one (training and A_EP from where they stopped, other stages from their start).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import tyro
from mani_skill.utils.registration import REGISTERED_ENVS

from dexenvs.experts import EXPERTS, TaskName
from dexenvs.scenarios import Scenario
from generators.augment import object_pool, slip_rejection
from generators.dataset import DatasetWriter, Episode, demo_names, merge_datasets, open_dataset, read_episode

VARIANTS = ("flywheel", "replay_only", "no_residual", "no_aep")
CARRY_ROLLOUTS = ("flywheel", "no_residual")  # the variants whose D_i (i > 1) is A_EP of the last rollouts
# A carry that slides in the fingers is a poor demo (grasp). The limit only fits where the seed itself holds still: the
# lift's object rests on two flat palms and slides in every successful lift (median 16 mm at i = 2: a 1 cm limit kept 14
# of 52 successes and none of the pots), and the pour's scripted seed slides its mug 43 mm in the hand as it tilts (a 1 cm
# limit kept 3 of 10 successes at i = 1 and 0 of 15 at i = 2)
MAX_SLIP = dict(grasp=0.01, pour=0.0, handover=0.01, lift=0.0)
# --quick keeps every E and P from i = 1 (its BC base, trained on 20 demos in 3 E x 5 P, succeeded only on the seed's
# own box among O_2 in a CI run) and every successful rollout. Even so, on some CPUs its base grasps none of O_2 but
# the seed's box (4 of 4 there, 0 of 20 on the other five: CI on 2026-12-03), so --quick keeps the task's --cover as a
# full run does: D_2 then spans O_2 whatever the rollouts hold
QUICK = dict(trajectories=(20, 30, 40), rollouts=6, base_algo="bc", train_steps=(3000, 3000, 3000), residual_steps=1500,
             residual_val_episodes=4, eval_seeds=2, eval_episodes=2, envs=(0,), poses=(0,), max_slip=0.0)

# base training steps per iteration. The grasp's and the pour's i = 3 bases gained from 12,000 steps over 6,000 (T_OEP
# over 120 episodes, benchmarks.flywheel_reeval: grasp 49 -> 68%, pour 57 -> 76%); the lift's and the handover's larger
# networks (two hands: 4.7M parameters against 1.3-1.4M) take 2.6x as long a step, their 6,000-step bases reach 95% and
# 87.5%, and the handover's trained on to 12,000 did not gain (27.5% against 25%, on its executed-action data)
TRAIN_STEPS = dict(grasp=(4000, 5000, 12000), pour=(4000, 5000, 12000), lift=(4000, 5000, 6000),
                   handover=(4000, 5000, 6000))
# the seeds every best run started from: one scripted demo per category of the task's train objects (the lift's pots
# have no scripted seed; its wide box and tray seeds reached 97.5% on T_OEP), all in one environment and pose. One drawn
# seed (DexFlyWheel's single demo, `--seed-scenarios draw`) left whole categories out of D_1 and D_2: the grasp from
# one drawn seed ended at 0% on T_OEP with the executed-action carry, and the handover at 0% as well
SEED_SCENARIOS = {task: tuple(f"{o}|studio-white-blue|p25" for o in objs) for task, objs in dict(
    grasp=("box_02", "bottle_00", "can_00", "cup_00", "mug_00"), pour=("mug_00", "cup_00"),
    lift=("wide_box_02", "tray_00"), handover=("box_02", "bottle_00", "can_00", "cup_00")).items()}
# --cover per task where A_EP carries rollouts: on in the grasp's, the pour's and the handover's best runs; the lift's
# best run (97.5% on T_OEP at i = 3) ran without it, and the lift with it is not measured
COVER = dict(grasp=True, pour=True, lift=False, handover=True)
# what a run made before a setting existed did, where that is not the setting's default: such a run resumes only with it
BEFORE_SETTING = dict(rollout_motion="executed", seed_scenarios=[], cover=False)


@dataclass
class Args:
    task: TaskName = "handover"
    iters: int = 3
    seed_scenarios: tuple[str, ...] | None = None
    """one scripted seed demo per scenario, object|environment|pose (generators.seed --scenarios); `draw`: one seed
    drawn from the train split. Default: SEED_SCENARIOS[task] (one per category; --quick: draw); a run resumed without
    it keeps its own. T_O^i is evaluated in the first one's environment and pose"""
    variant: Literal["flywheel", "replay_only", "no_residual", "no_aep"] = "flywheel"
    quick: bool = False
    """a small run end to end in minutes: sets trajectories, rollouts, steps and evaluation to QUICK"""
    out: Path | None = None
    """default runs/flywheel/<task>[_<variant>][_<K>seeds][_quick]"""
    trajectories: tuple[int, ...] = (20, 100, 500)
    """|D_i| per iteration (the last is repeated for more iterations)"""
    envs: tuple[int, ...] = (3, 8, 0)
    """C_aug^i: environments A_EP draws from per iteration, the seed's and the next train ones (0: all). DexFlyWheel's
    grasp: 3, 8, 12. A narrow start puts D_1's 20 demos where the rollouts happen, so the first base is strong there"""
    poses: tuple[int, ...] = (5, 10, 0)
    """C_aug^i: train poses nearest the seed's per iteration (0: all). DexFlyWheel's grasp: 5, 10, 15"""
    smooth: float = 0.0
    """A_EP low-passes each policy rollout by a Gaussian of this many steps (within each subtask) before carrying it.
    Our CPU-trained diffusion bases jitter step to step (20x the seed's wrist jerk) and saw-tooth at chunk boundaries;
    sigma 4 brings the jerk to the seed's level and cuts the next base's training loss 3x, but did not raise its success
    (grasp, i = 2: 0% vs 2.5% on T_O^2), so the default carries rollouts verbatim"""
    max_slip: float | None = None
    """keep a successful rollout only if its object slid at most this much (m) in the hand while carried (`hold_slip`;
    0: keep every success; default MAX_SLIP[task]). Not measured for the handover. (Applying it to A_EP's carried demos
    too, `generators.augment --max-slip`, kept 64% of attempts instead of 98% and gave the grasp i = 3 base 17.5% on
    T_O^3 instead of 22.5%)"""
    seed_share: float = 0.0
    """share of D_i (i > 1) that A_EP carries from the seed demos onto O_i (as replay_only does) rather than from the
    last iteration's rollouts. 0: DexFlyWheel's D_(i+1) = A_EP(D_O^i). Our rollouts jitter where the scripted seed does
    not, and a base trained only on their carries stalled (grasp from five seeds: T_OEP 45% -> 37.5% from i = 2 to 3,
    while replay from the seed reached 82.5%); a share keeps the seed's clean motion in D_i beside the rollouts' objects"""
    rollout_motion: Literal["executed", "seed"] | None = None
    """what A_EP carries from each successful rollout: its actions as `executed` (DexFlyWheel), or its grasp on the
    `seed` motion of its object's category (`augment.graft_grasp`: the seed's approach, closing and carrying, moved by
    one offset so the hand holds the object as the rollout held it; the handover's receiver as it held the object at
    the end, the giver on the seed's motion). Applies to the variants flywheel and no_residual, and is their default:
    it beat `executed` at i = 3 on all four tasks (the handover from four seeds: 90% on T_OEP against 25%)"""
    cover: bool | None = None
    """default COVER[task] in the variants flywheel and no_residual (--quick too), a resumed run keeps its own.
    D_i (i > 1) also carries the category seed onto each object of O_i that no kept rollout holds (as replay_only
    does), so the data spans all of O_i. Off: DexFlyWheel's D_(i+1) = A_EP(D_O^i), where an object the policy never
    grasps (the pour's largest mugs: 0 of 12 rollouts) stays out of the data for good"""
    rollouts: int = 30
    """successful combined-policy rollouts kept per iteration (D_O^i), spread over the next iteration's objects"""
    base_algo: Literal["diffusion", "bc"] = "diffusion"
    train_steps: tuple[int, ...] | None = None
    """base policy training steps per iteration (default TRAIN_STEPS[task]; a run resumed without it keeps its own).
    Raised on an existing run, the first trained base it raises trains on from its checkpoint and the stages after it
    rerun"""
    down_dims: tuple[int, ...] | None = None
    """the diffusion base's U-Net widths (agents.train --down-dims); default agents.train's for the action's size:
    (64, 128) for one hand, (128, 256) for two"""
    precision: Literal["fp32", "bf16"] = "fp32"
    """the base's training numerics (agents.train --precision): bf16 autocast trains a two-hand step 1.37x as fast on a
    CPU with AVX512-BF16 and 0.40x on one without (benchmarks.train_throughput)"""
    residual_algo: Literal["sac", "ppo"] = "sac"
    residual_steps: int = 30_000
    alpha: float = 0.1
    residual_val_episodes: int = 40
    """the residual keeps the alpha (of 0, 1/4, 1/2 and 1 x --alpha) that succeeds most in this many validation
    episodes on the next objects, if it beats the base by more than one standard error, else 0
    (agents.residual --val-episodes, select_alpha); 0 switches it off only by --alpha 0"""
    eval_seeds: int = 5
    eval_episodes: int = 8
    """per seed and test set: T_OEP's 40 configurations are covered once by 5 seeds x 8"""
    workers: int = 2
    device: str = "auto"
    """where the base policy trains (agents.train --device): auto picks CUDA when there is one; the simulator, the
    residual's small MLPs and evaluation stay on the CPU"""
    seed: int = 0
    restart: bool = False
    """discard an existing run in --out and start over"""
    progress: bool = True


def _per_iter(values: tuple[int, ...], i: int) -> int:
    return values[min(i, len(values)) - 1]


def iteration_objects(space, seed_objects: list[str], i: int) -> list[str]:
    """O_1: the seeds' objects; O_2: the training objects of their categories; O_3 on: every training object."""
    return object_pool(space, "train", pool_mode(i), seed_objects)


def pool_mode(i: int) -> str:
    """Which objects iteration i reaches (`augment.object_pool`'s mode): the seeds', their categories', all."""
    return "seed" if i <= 1 else "category" if i == 2 else "all"


def coverage(path: Path) -> dict:
    """Trajectories and distinct objects, environments, poses and scenarios of a dataset."""
    with open_dataset(path) as f:
        ss = [Scenario.parse(str(f["data"][n].attrs["scenario"])) for n in demo_names(f)]
    o, e, p = ({getattr(s, a) for s in ss} for a in ("object_id", "env_id", "pose_id"))
    return dict(trajectories=len(ss), objects=len(o), environments=len(e), poses=len(p), configs=len(o) * len(e) * len(p),
                distinct_scenarios=len(set(ss)), object_ids=sorted(o))


# ---------------------------------------------------------------------------------------------------------- stages
class Stages:
    """Finished stages with their results and times, in `<out>/state.json` (rewritten atomically)."""

    def __init__(self, out: Path, settings: dict, restart: bool):
        self.path = out / "state.json"
        if restart and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        self._lock = (out / ".lock").open("w")
        try:  # two runs writing one directory would corrupt each other's datasets
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another flywheel run is using {out}; wait for it or choose another --out") from None
        if self.path.exists():
            self.state = json.loads(self.path.read_text())
            old = self.state["settings"]
            # a setting added since that run changes nothing at what runs did before it existed
            defaults = {f.name: list(f.default) if isinstance(f.default, tuple) else f.default for f in fields(Args)}
            defaults.update(BEFORE_SETTING)
            changed = {k: (old.get(k), v) for k, v in settings.items()
                       if k not in ("progress", "workers", "device", "restart") and old.get(k) != v
                       and (k in old or v != defaults.get(k))}
            if set(changed) == {"train_steps"}:
                self._train_longer(out, *changed.pop("train_steps"))
            if changed:
                self._lock.close()
                raise ValueError(f"{out} holds a run with other settings ("
                                 + ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in changed.items())
                                 + "); pass --restart to discard it, or choose another --out")
            self.state["runs"] += 1
        else:
            self.state = dict(settings=settings, stages={}, runs=1)
        self._save()

    def _train_longer(self, out: Path, old: list[int], new: list[int]) -> None:
        """--train-steps changed on this run: the first trained base whose steps changed trains on from its checkpoint
        (agents.train gives the added steps their own warm-up and cosine) on the same D_i, and everything after it
        (its evaluation, residual and rollouts, the later iterations) reruns from there."""
        stages = self.state["stages"]
        changed = [i for i in range(1, self.state["settings"]["iters"] + 1)
                   if _per_iter(old, i) != _per_iter(new, i) and f"{i}.train" in stages]
        self.state["settings"]["train_steps"] = new
        if not changed:
            return
        i = changed[0]
        trained = stages[f"{i}.train"]["result"]["step"]
        if _per_iter(new, i) < trained:
            self._lock.close()
            raise ValueError(f"--train-steps: the base of iteration {i} in {out} has trained {trained} steps; it can "
                             f"train longer, not shorter (pass --restart to discard the run, or choose another --out)")
        names = list(stages)
        for name in names[names.index(f"{i}.train"):]:
            del stages[name]
        # what those stages wrote: base_i and D_i stay (the base trains on, on the same data); from iteration i on,
        # residual_j and rollouts_j go; after it, base_j and D_j
        first_stale = dict(base_=i + 1, D=i + 1, residual_=i, rollouts_=i)
        for p in out.iterdir():
            m = re.fullmatch(r"(base_|residual_|rollouts_|D)(\d+)(\D.*)?", p.name)
            if p.name.startswith("report.") or (m and int(m.group(2)) >= first_stale[m.group(1)]):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        print(f"[flywheel] --train-steps {' '.join(map(str, new))}: the base of iteration {i} trains on from step "
              f"{trained} to {_per_iter(new, i)}; the stages after it rerun")

    def _save(self) -> None:
        tmp = self.path.with_name(f"state.json.tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, self.path)

    def done(self, name: str) -> bool:
        return name in self.state["stages"]

    def run(self, name: str, title: str, fn) -> dict:
        if self.done(name):
            print(f"[flywheel] {name} {title}: finished earlier, skipped")
            return self.state["stages"][name]["result"]
        print(f"[flywheel] {name} {title} ...", flush=True)
        t = time.perf_counter()
        result = fn()
        self.state["stages"][name] = dict(result=result, seconds=round(time.perf_counter() - t, 1), run=self.state["runs"])
        self._save()
        return result


# ---------------------------------------------------------------------------------------------------------- rollouts
_ROLLOUT: dict = {}


def _init_rollout(env_args: dict, ckpt: str, residual: str | None) -> None:
    from agents.checkpoint import load_model
    from agents.policy import Policy
    from agents.residual import load_residual
    from generators.recorder import Recorder
    from generators.replay import make_env

    import gymnasium as gym

    torch.set_num_threads(1)
    policy = Policy(load_model(ckpt))
    _ROLLOUT["max_steps"] = gym.spec(env_args["env_name"]).max_episode_steps
    _ROLLOUT.update(env=Recorder(make_env(env_args, "state_dict")),  # the policy reads dict observations
                    policy=load_residual(residual, base=policy) if residual else policy)


def _rollout(job: tuple[int, str, int, int]) -> tuple[int, Episode | None, dict]:
    from agents.evaluate import run_episode

    attempt, scenario, reset_seed, iteration = job
    env = _ROLLOUT["env"]  # a Recorder: the episode run_episode plays is kept
    r = run_episode(env, _ROLLOUT["policy"], reset_seed, scenario=scenario, max_steps=_ROLLOUT["max_steps"])
    ep = env.episode(dict(generator="rollout", flywheel_iteration=iteration, attempt=attempt)) if r["success"] else None
    return attempt, ep, dict(attempt=attempt, scenario=scenario, success=r["success"], steps=r["steps"])


def collect_rollouts(out: Path, env_args: dict, ckpt: Path, residual: Path | None, scenarios: list[str], num: int,
                     max_attempts: int, iteration: int, seed: int, workers: int, progress: bool, task: str,
                     max_slip: float) -> dict:
    """Rolls the policy out over `scenarios` in turn until `num` successes (or `max_attempts`); writes the successes
    whose object slid less than `max_slip` in the hand (`hold_slip`; 0: every success)."""
    from tqdm import tqdm

    from generators.augment import run_ordered

    for p in (out, out.with_name(out.name + ".episodes")):  # a rollout stage restarts from its beginning
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    writer = DatasetWriter(out, env_args)
    records: list[dict] = []
    bar = tqdm(total=num, desc=f"rollouts {iteration}", unit="demo", disable=not progress)

    def jobs():
        for a in range(max_attempts):
            rs = int(np.random.SeedSequence([seed, iteration, a]).generate_state(1)[0] & 0x7FFFFFFF)
            yield a, scenarios[a % len(scenarios)], rs, iteration

    def accept(ep, rec):
        if ep is not None:
            rec["slip"], why = slip_rejection(ep, task, max_slip)
            if why:
                ep, rec["rejected"] = None, why
        records.append(rec)
        if ep is not None:
            writer.add(ep)
            bar.update(1)
        bar.set_postfix(attempts=len(records), rate=f"{len(writer) / len(records):.0%}")

    enough = lambda: len(writer) >= num  # noqa: E731
    init = (env_args, str(ckpt), str(residual) if residual else None)
    t = time.perf_counter()
    if workers <= 1:
        _init_rollout(*init)
        for job in jobs():
            accept(*_rollout(job)[1:])
            if enough():
                break
    else:
        run_ordered(workers, _init_rollout, init, _rollout, jobs(), accept, enough)
    bar.close()
    per_obj: dict[str, list[tuple[bool, bool]]] = {}
    for r in records:
        per_obj.setdefault(Scenario.parse(r["scenario"]).object_id, []).append((r["success"], "rejected" in r))
    slips = [r["slip"] for r in records if r.get("slip") is not None]
    result = dict(path=str(out), attempts=len(records), successes=len(writer),
                  task_successes=sum(r["success"] for r in records), rejected_slip=sum("rejected" in r for r in records),
                  max_slip=max_slip, median_slip=round(float(np.median(slips)), 4) if slips else None,
                  success_rate=round(len(writer) / max(1, len(records)), 4), seconds=round(time.perf_counter() - t, 1),
                  per_object={o: dict(attempts=len(v), successes=sum(ok for ok, _ in v),
                                      kept=sum(ok and not rej for ok, rej in v)) for o, v in sorted(per_obj.items())})
    writer.attrs["generation"] = json.dumps(result)
    writer.close()
    return result


def carry(args: Args, out: Path, i: int, source: Path, mode: str, num: int | None = None,
          path: Path | None = None) -> dict:
    """A_EP of `source` onto iteration i's objects (`mode`, as `augment --objects`), environments and poses -> D_i."""
    from generators import augment

    path = path or out / f"D{i}.hdf5"
    s = augment.main(augment.Args(task=args.task, num=num if num is not None else _per_iter(args.trajectories, i),
                                  source=source, out=path, objects=mode, envs=_per_iter(args.envs, i),
                                  poses=_per_iter(args.poses, i), smooth=args.smooth if mode == "source" else 0.0,
                                  workers=args.workers, seed=args.seed + i, iteration=i,
                                  resume=path.exists() or path.with_name(path.name + ".episodes").exists(),
                                  progress=args.progress))
    return dict(path=str(path), generation_success=s["success_rate"], attempts=s["attempts"], **coverage(path))


def _seeds_and_rollouts(seed_path: Path, rollouts: Path) -> tuple[list[Episode], list[Episode], dict]:
    """The seed demos, the rollouts and the rollouts' env args."""
    with open_dataset(seed_path) as f:
        seeds = [read_episode(f["data"][n]) for n in demo_names(f)]
    with open_dataset(rollouts) as f:
        return seeds, [read_episode(f["data"][n]) for n in demo_names(f)], json.loads(f["data"].attrs["env_args"])


def _write_sources(out: Path, env_args: dict, episodes) -> Path:
    """`out` rebuilt whole from `episodes`: an A_EP source derived from other files is a pure function of them."""
    out.unlink(missing_ok=True)
    shutil.rmtree(out.with_name(out.name + ".episodes"), ignore_errors=True)
    with DatasetWriter(out, env_args) as writer:
        for ep in episodes:
            writer.add(ep)
    return out


def graft_rollouts(rollouts: Path, seed_path: Path, task: str, out: Path) -> Path:
    """`out`: each rollout's grasp on its category seed's motion (`augment.graft_grasp`), in the rollouts' order. A
    source for A_EP only: its demos keep the seed's observations and states, which the new actions no longer match."""
    from generators.augment import graft_grasp, source_for

    seeds, eps, env_args = _seeds_and_rollouts(seed_path, rollouts)
    seed_objects = [Scenario.parse(s.scenario).object_id for s in seeds]
    return _write_sources(out, env_args, (
        graft_grasp(seeds[source_for(Scenario.parse(ep.scenario).object_id, seed_objects, 0)], ep, task,
                    env_args["robot"]) for ep in eps))


def cover_objects(rollouts: Path, seed_path: Path, objects: list[str], out: Path) -> tuple[Path, list[str]]:
    """`out`: the rollouts' demos, then for each of `objects` that no rollout holds its category seed's demo relabelled
    onto it (A_EP then carries the seed onto that object, as replay_only does). Returns it and those objects."""
    from generators.augment import source_for

    seeds, eps, env_args = _seeds_and_rollouts(seed_path, rollouts)
    held = {Scenario.parse(ep.scenario).object_id for ep in eps}
    missing = [o for o in objects if o not in held]
    seed_objects = [Scenario.parse(s.scenario).object_id for s in seeds]

    def relabelled(o: str) -> Episode:
        s = seeds[source_for(o, seed_objects, 0)]
        sc = Scenario.parse(s.scenario)
        return replace(s, scenario=str(Scenario(o, sc.env_id, sc.pose_id)),
                       provenance=dict(generator="cover", seed=s.provenance, seed_scenario=s.scenario))
    return _write_sources(out, env_args, [*eps, *map(relabelled, missing)]), missing


def carry_rollouts(args: Args, out: Path, i: int, objects: list[str] = ()) -> dict:
    """D_i (i > 1) = A_EP(rollouts_(i-1)), with `seed_share` of it carried from `out/seed.hdf5` onto O_i instead;
    with `--cover`, the seed stands in for each of `objects` (O_i) that no rollout holds."""
    rollouts = out / f"rollouts_{i - 1}.hdf5"
    if args.rollout_motion == "seed":
        rollouts = graft_rollouts(rollouts, out / "seed.hdf5", args.task, out / f"rollouts_{i - 1}_grafted.hdf5")
    covered = {}
    if args.cover:
        rollouts, missing = cover_objects(rollouts, out / "seed.hdf5", list(objects),
                                          out / f"rollouts_{i - 1}_covered.hdf5")
        covered = dict(seed_objects=missing)
    if not args.seed_share:
        return dict(carry(args, out, i, rollouts, "source"), **covered)
    n = _per_iter(args.trajectories, i)
    n_seed = round(args.seed_share * n)
    parts = {}
    if n - n_seed:
        parts["rollouts"] = carry(args, out, i, rollouts, "source", n - n_seed, out / f"D{i}_rollouts.hdf5")
    if n_seed:
        parts["seed"] = carry(args, out, i, out / "seed.hdf5", pool_mode(i), n_seed,
                              out / f"D{i}_seed.hdf5")
    path = merge_datasets([Path(p["path"]) for p in parts.values()], out / f"D{i}.hdf5")
    cov, attempts = coverage(path), sum(p["attempts"] for p in parts.values())
    return dict(path=str(path), generation_success=round(cov["trajectories"] / max(1, attempts), 4),
                attempts=attempts, parts=parts, **cov, **covered)


# ---------------------------------------------------------------------------------------------------------- the run
def default_rollout_motion(task: str, variant: str) -> str:
    """`seed` where A_EP carries rollouts (it beat `executed` on every task), else `executed`."""
    return "seed" if variant in CARRY_ROLLOUTS else "executed"


def task_defaults(args: Args) -> dict:
    """The seeds and --cover a run of this task, variant and preset gets when they are not given."""
    return dict(seed_scenarios=() if args.quick else SEED_SCENARIOS[args.task],
                cover=args.variant in CARRY_ROLLOUTS and COVER[args.task])


def given_seeds(args: Args) -> tuple[str, ...] | None:
    """--seed-scenarios as given, `draw` (one seed drawn from the train split) as (); None when not given."""
    if args.seed_scenarios is None or "draw" not in args.seed_scenarios:
        return args.seed_scenarios
    if len(args.seed_scenarios) > 1:
        raise ValueError(f"--seed-scenarios draw stands alone (one seed drawn from the train split), got "
                         f"{list(args.seed_scenarios)}")
    return ()


def resolve_settings(args: Args, out: Path) -> Args:
    """--train-steps, --seed-scenarios and --cover as given; else what the run in `out` started with (a default may
    have moved since: resuming must neither train its bases on nor change its seeds), else the task's defaults
    (TRAIN_STEPS, task_defaults)."""
    state = out / "state.json"
    old = json.loads(state.read_text())["settings"] if state.exists() and not args.restart else None
    given = dict(train_steps=args.train_steps, seed_scenarios=given_seeds(args), cover=args.cover)
    defaults = dict(train_steps=TRAIN_STEPS[args.task], **task_defaults(args))
    for k, v in given.items():
        if v is None:
            v = old.get(k, BEFORE_SETTING.get(k)) if old is not None else defaults[k]
            given[k] = tuple(v) if isinstance(v, list) else v
    return replace(args, **given)


def run_suffix(args: Args) -> str:
    """What sets a run apart from the default in its directory's name: seeds and --cover other than the task's, its
    seed share, rollout motion, U-Net widths, bf16 training, the quick preset."""
    motion = args.rollout_motion or default_rollout_motion(args.task, args.variant)
    defaults, seeds = task_defaults(args), given_seeds(args)
    parts = []
    if seeds is not None and tuple(seeds) != defaults["seed_scenarios"]:
        parts.append(f"{len(seeds)}seeds" if seeds else "drawnseed")
    if args.seed_share:
        parts.append(f"seedshare{round(100 * args.seed_share)}")
    if motion != default_rollout_motion(args.task, args.variant):
        parts.append(f"{motion}motion")
    if args.cover is not None and args.cover != defaults["cover"]:
        parts.append("cover" if args.cover else "nocover")
    if args.down_dims is not None:
        parts.append("unet" + "-".join(map(str, args.down_dims)))
    if args.precision != "fp32":
        parts.append(args.precision)
    if args.quick:
        parts.append("quick")
    return "".join(f"_{p}" for p in parts)


def main(args: Args) -> dict:
    from agents import evaluate as ev
    from agents import residual as res
    from agents import train as tr
    from generators import seed as seed_gen

    if args.quick:
        args = replace(args, **QUICK)
    if args.max_slip is None:
        args = replace(args, max_slip=MAX_SLIP[args.task])
    if args.rollout_motion is None:
        args = replace(args, rollout_motion=default_rollout_motion(args.task, args.variant))
    if args.iters < 1:
        raise ValueError(f"--iters must be at least 1, got {args.iters}")
    if not 0.0 <= args.seed_share < 1.0:
        raise ValueError(f"--seed-share must be in [0, 1), got {args.seed_share} (all from the seed: --variant replay_only)")
    if args.seed_share and args.variant not in CARRY_ROLLOUTS:
        raise ValueError(f"--seed-share mixes seed carries into A_EP(rollouts): it applies to the variants flywheel "
                         f"and no_residual, not {args.variant}")
    if args.cover and args.variant not in CARRY_ROLLOUTS:
        raise ValueError(f"--cover fills in the objects A_EP(rollouts) misses: it applies to the variants flywheel and "
                         f"no_residual, not {args.variant}")
    if args.rollout_motion == "seed" and args.variant not in CARRY_ROLLOUTS:
        raise ValueError(f"--rollout-motion seed grafts each rollout's grasp onto the seed's motion before A_EP: it "
                         f"applies to the variants flywheel and no_residual, not {args.variant}")
    env_id = EXPERTS[args.task][0]
    space = REGISTERED_ENVS[env_id].cls.scenario_space()
    out = args.out or Path("runs/flywheel") / (args.task + ("" if args.variant == "flywheel" else f"_{args.variant}")
                                               + run_suffix(args))
    args = resolve_settings(args, out)
    for sc in args.seed_scenarios:
        if space.validate(Scenario.parse(sc)).object_id not in space.train_objects:
            raise ValueError(f"--seed-scenarios {sc}: seeds come from the train split; its objects are "
                             f"{space.train_objects}")
    settings = {f.name: (str(v) if isinstance(v := getattr(args, f.name), Path) else v) for f in fields(args)}
    for k in ("trajectories", "train_steps", "envs", "poses", "seed_scenarios", "down_dims"):
        settings[k] = None if getattr(args, k) is None else list(getattr(args, k))
    stages = Stages(out, settings, args.restart)
    use_residual = args.variant in ("flywheel", "no_aep")
    t_run = time.perf_counter()

    seed_path = out / "seed.hdf5"
    stages.run("0.seed", "seed demo (scripted expert)", lambda: dict(
        path=str(seed_gen.main(seed_gen.Args(task=args.task, out=seed_path, scenarios=args.seed_scenarios)))))
    with open_dataset(seed_path) as f:
        seeds = [Scenario.parse(str(f["data"][n].attrs["scenario"])) for n in demo_names(f)]
        env_args = json.loads(f["data"].attrs["env_args"])
    seed_scenario = seeds[0]
    objects = {i: iteration_objects(space, [s.object_id for s in seeds], i) for i in range(1, args.iters + 2)}

    def at_seed(objs: list[str]) -> list[str]:  # these objects in the seed's environment and pose
        return [str(Scenario(o, seed_scenario.env_id, seed_scenario.pose_id)) for o in objs]
    print(f"[flywheel] {args.task} ({args.variant}), {args.iters} iterations in {out}; objects per iteration: "
          + ", ".join(f"O_{i}={len(objects[i])}" for i in range(1, args.iters + 1)))

    iterations = []
    for i in range(1, args.iters + 1):
        tag = f"iteration {i}/{args.iters}"
        # 1. D_i
        if i == 1:
            data = stages.run("1.data", f"{tag}: D_1 = A_EP(seed)", lambda: carry(args, out, 1, seed_path, "seed"))
        elif args.variant == "replay_only":
            data = stages.run(f"{i}.data", f"{tag}: D_{i} = A_EP(seed) onto O_{i}",
                              lambda: carry(args, out, i, seed_path, pool_mode(i)))
        elif stages.state["stages"][f"{i - 1}.rollout"]["result"]["successes"] == 0:
            # no rollout succeeded: the flywheel has nothing of its own to carry, so this iteration's data falls back to
            # replay from the seed (as replay_only); the report says so
            data = stages.run(f"{i}.data", f"{tag}: no successful rollouts, D_{i} = A_EP(seed) onto O_{i}",
                              lambda: dict(carry(args, out, i, seed_path, pool_mode(i)), fallback="replay"))
        elif args.variant == "no_aep":
            data = stages.run(f"{i}.data", f"{tag}: D_{i} = the rollouts", lambda: dict(
                path=stages.state["stages"][f"{i - 1}.rollout"]["result"]["path"],
                **coverage(Path(stages.state["stages"][f"{i - 1}.rollout"]["result"]["path"]))))
        else:
            data = stages.run(f"{i}.data", f"{tag}: D_{i} = A_EP(rollouts {i - 1}"
                              + (" grafted onto the seed's motion)" if args.rollout_motion == "seed" else ")")
                              + (" + the seed onto the objects no rollout holds" if args.cover else "")
                              + (f" + {args.seed_share:.0%} A_EP(seed) onto O_{i}" if args.seed_share else ""),
                              lambda: carry_rollouts(args, out, i, objects[i]))
        # 2. base policy
        base_dir = out / f"base_{i}"
        stages.run(f"{i}.train", f"{tag}: train the {args.base_algo} base policy on D_{i}", lambda: tr.main(tr.Args(
            algo=args.base_algo, dataset=Path(data["path"]), out=base_dir, steps=_per_iter(args.train_steps, i),
            eval_every=0, resume=True, seed=args.seed, progress=args.progress, device=args.device,
            down_dims=args.down_dims, precision=args.precision)))
        ckpt = base_dir / "checkpoint.pt"
        # 3. residual
        res_dir = out / f"residual_{i}" if use_residual else None
        next_objects = objects[min(i + 1, args.iters)]
        t_o, t_next = at_seed(objects[i]), at_seed(next_objects)
        if use_residual:
            # trained where the combined policy acts next: the rollouts on O_(i+1) in the seed's environment and pose
            # (off it the early bases rarely succeed, 15% against 78% at i = 1 from five grasp seeds, and the residual
            # learned corrections that cost 28 points where the rollouts happen), and at the last iteration the final
            # policy on every train object, environment and pose
            where = dict(scenarios=t_next) if i < args.iters else dict(objects=next_objects)
            stages.run(f"{i}.residual", f"{tag}: residual RL ({args.residual_algo}) on O_{min(i + 1, args.iters)}"
                       + (" in the seed's environment and pose" if i < args.iters else ""),
                       lambda: res.main(res.Args(ckpt=ckpt, out=res_dir, **where, algo=args.residual_algo,
                                                 timesteps=args.residual_steps, alpha=args.alpha, workers=args.workers,
                                                 val_episodes=args.residual_val_episodes, seed=args.seed,
                                                 progress=args.progress)))
        # 4. evaluation
        t_oep = [str(s) for s in space.scenarios("test_oep")]
        sets = [("T_O", t_o), ("T_OEP", t_oep)]
        if i < args.iters and use_residual:
            # the objects the residual trained on and the rollouts go to: the rollouts use whichever policy is better
            sets.append(("T_next", t_next))

        # a residual its validation switched off (alpha 0) acts as its base bit for bit
        # (test_residual_with_alpha_zero_is_the_base_policy), so the combined policy's episodes would replay the base's:
        # its figures are the base's, not played again
        residual_on = use_residual and stages.state["stages"][f"{i}.residual"]["result"]["alpha"] > 0

        def evaluate() -> dict:
            def figures(name: str, scen: list[str], pol: str, resid: Path | None) -> dict:
                s = ev.evaluate(ckpt, env_id, "train", args.eval_seeds, args.eval_episodes, args.workers, resid,
                                scenarios=scen)
                print(f"[flywheel]   {name} {pol}: {s['success_mean']:.1%} ± {s['success_std']:.1%}")
                return dict(mean=s["success_mean"], std=s["success_std"], episodes=s["episodes"],
                            per_scenario={k: v["success"] for k, v in s["per_scenario"].items()})

            r = {}
            for name, scen in sets:
                r[f"{name}/base"] = figures(name, scen, "base", None)
                if residual_on:
                    r[f"{name}/combined"] = figures(name, scen, "combined", res_dir)
                elif use_residual:
                    r[f"{name}/combined"] = r[f"{name}/base"] | dict(same_as_base=True)
                    print(f"[flywheel]   {name} combined: the base's (residual alpha 0)")
            return r

        evals = stages.run(f"{i}.eval", f"{tag}: evaluate on T_O^{i} and T_OEP", evaluate)
        # 5. rollouts on the next objects
        rollout = None
        if i < args.iters and args.variant != "replay_only":
            num = _per_iter(args.trajectories, i + 1) if args.variant == "no_aep" else args.rollouts
            # a residual that does worse than its base on these objects (too little RL for this base) is left out
            combined = residual_on and evals["T_next/combined"]["mean"] >= evals["T_next/base"]["mean"]
            who = "combined" if combined else "base"
            rollout = stages.run(f"{i}.rollout", f"{tag}: roll out the {who} policy on O_{i + 1} "
                                 f"({len(next_objects)} objects)", lambda: dict(collect_rollouts(
                                     out / f"rollouts_{i}.hdf5", env_args, ckpt, res_dir if combined else None, t_next,
                                     num, 4 * num, i, args.seed, args.workers, args.progress, args.task,
                                     args.max_slip), policy=who))
            if rollout["successes"] == 0:
                print(f"[flywheel] iteration {i}: no rollout succeeded with a firm grasp on O_{i + 1} "
                      f"({rollout['attempts']} attempts, {rollout['rejected_slip']} rejected for slip); "
                      f"D_{i + 1} falls back to replay from the seed. Train longer (--train-steps, --residual-steps).")
        residual = ({k: stages.state["stages"][f"{i}.residual"]["result"].get(k) for k in ("alpha", "validation")}
                    if use_residual else None)
        iterations.append(dict(iteration=i, objects=objects[i], data=data, eval=evals, rollout=rollout,
                               residual=residual))

    report = dict(task=args.task, variant=args.variant, out=str(out), settings=settings, iterations=iterations,
                  stage_seconds={k: v["seconds"] for k, v in stages.state["stages"].items()},
                  total_stage_seconds=round(sum(v["seconds"] for v in stages.state["stages"].values()), 1),
                  this_run_seconds=round(time.perf_counter() - t_run, 1))
    write_report(out, report)
    return report


# ---------------------------------------------------------------------------------------------------------- report
def _sr(e: dict, name: str, residual: bool) -> str:
    b = e[f"{name}/base"]
    s = f"{b['mean']:.1%} ± {b['std']:.1%}"
    if residual and f"{name}/combined" in e:
        c = e[f"{name}/combined"]
        s += f" → **{c['mean']:.1%}** ± {c['std']:.1%}" + (" (alpha 0: the base)" if c.get("same_as_base") else "")
    return s


def write_report(out: Path, report: dict) -> None:
    its = report["iterations"]
    residual = report["variant"] in ("flywheel", "no_aep")
    lines = [f"# Flywheel report: {report['task']} ({report['variant']})", "",
             "DexFlyWheel's Table 1 shape. SR: success rate, mean ± std over evaluation seeds"
             + (", base → combined (base + residual)" if residual else ", base policy") + "."
             + (" D_i (i > 1) carries each rollout's grasp on its category seed's motion (--rollout-motion seed)."
                if report.get("settings", {}).get("rollout_motion") == "seed" else ""), "",
             "| Iter. | O | E | P | Configs (OxExP) | Traj. | SR in T_O^i | SR in T_OEP |",
             "|---|---|---|---|---|---|---|---|"]
    for it in its:
        d = it["data"]
        lines.append(f"| i = {it['iteration']}{' (replay fallback)' if d.get('fallback') else ''} | {d['objects']} | {d['environments']} | {d['poses']} | {d['configs']} | "
                     f"{d['trajectories']} | {_sr(it['eval'], 'T_O', residual)} | {_sr(it['eval'], 'T_OEP', residual)} |")
    lines += ["", "| Stage | Seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in report["stage_seconds"].items()]
    lines += [f"| **total** | **{report['total_stage_seconds']:.0f}** ({report['total_stage_seconds'] / 60:.1f} min) |", ""]
    for it in its:
        if it["data"].get("parts"):
            lines.append(f"- D_{it['iteration']}: " + ", ".join(
                f"{p['trajectories']} carried from the {k} ({p['objects']} objects)" for k, p in it["data"]["parts"].items()))
        if "seed_objects" in it["data"]:
            missed = it["data"]["seed_objects"]
            lines.append(f"- D_{it['iteration']}: {len(missed)} objects of O_{it['iteration']} held by no kept rollout, "
                         "carried from their category seed (--cover)" + (": " + ", ".join(missed) if missed else ""))
        v = (it.get("residual") or {}).get("validation")
        if v:
            lines.append(f"- iteration {it['iteration']} residual: alpha {v['chosen']:g} kept on validation ("
                         + ", ".join(f"{float(a):g}: {r:.0%}" for a, r in v["success"].items())
                         + f" of {v['episodes']} validation episodes on its training objects; 0 is the base)")
        if it["rollout"]:
            r = it["rollout"]
            e = it["eval"]
            if "T_next/base" in e:
                lines.append(f"- iteration {it['iteration']} on O_{it['iteration'] + 1} (seed's E and P): base "
                             f"{e['T_next/base']['mean']:.1%} → combined {e['T_next/combined']['mean']:.1%}")
            lines.append(f"- iteration {it['iteration']} rollouts ({r.get('policy', 'combined')} policy): "
                         f"{r.get('task_successes', r['successes'])}/{r['attempts']} succeeded, {r['successes']} kept "
                         f"with a firm grasp (slip <= {r.get('max_slip', 0) * 1000:.0f} mm; 0: all); per object "
                         "(kept/succeeded/attempts) " + ", ".join(f"{o} {v.get('kept', v['successes'])}/{v['successes']}/"
                                                                  f"{v['attempts']}" for o, v in r["per_object"].items()))
    lines += ["", "![diversity and success per iteration](report.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
    (out / "report.json").write_text(json.dumps(report, indent=1))
    _plot(out, report, residual)
    print("\n".join(lines[:6 + len(its)]))
    print(f"[flywheel] wrote {out / 'report.md'}, {out / 'report.png'}, {out / 'report.json'}")


def _plot(out: Path, report: dict, residual: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = report["iterations"]
    x = [it["iteration"] for it in its]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("objects", "O"), ("environments", "E"), ("poses", "P"), ("configs", "O x E x P"),
                       ("trajectories", "trajectories")):
        a1.plot(x, [it["data"][key] for it in its], "o-", label=label)
    a1.set_yscale("log")
    a1.set_xlabel("iteration")
    a1.set_title("data diversity of D_i")
    a1.legend()
    for key, style in (("T_O/base", "o--"), ("T_O/combined", "o-"), ("T_OEP/base", "s--"), ("T_OEP/combined", "s-")):
        if all(key in it["eval"] for it in its):
            a2.errorbar(x, [it["eval"][key]["mean"] for it in its], [it["eval"][key]["std"] for it in its], fmt=style,
                        capsize=3, label=key)
    a2.set_ylim(-0.02, 1.02)
    a2.set_xlabel("iteration")
    a2.set_title("success rate")
    a2.legend()
    a1.set_xticks(x)
    a2.set_xticks(x)
    fig.suptitle(f"{report['task']} ({report['variant']})")
    fig.tight_layout()
    fig.savefig(out / "report.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main(tyro.cli(Args))
