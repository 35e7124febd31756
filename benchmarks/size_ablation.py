"""Does the base policy need the object's size? One base trained on a dataset recorded before the env observed
`obj_extents`, against the same training on the same demos with the size added, both evaluated on T_OEP alike.

    python -m benchmarks.size_ablation --without runs/flywheel_pre_size/grasp_5seeds/base_3/checkpoint.pt \
        --dataset runs/flywheel_pre_size/grasp_5seeds/D3.hdf5 --out runs/size_ablation/grasp

`--without` is a base checkpoint trained on a dataset that lacks `extra_obj_extents`; its dataset is copied to
`<out>/with_size.hdf5` with each demo's object size added (the env's `obj_extents`: the object's extents in its own
frame, constant over the demo), and a base is trained there with the same training arguments (algorithm, steps, seed,
widths). Both are evaluated on the task's held-out T_OEP scenarios with the same seeds and episodes as the flywheel.
Training resumes if `<out>` holds an unfinished run. Writes benchmarks/results/size_ablation_<task>.json.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

import h5py
import numpy as np
import tyro
from mani_skill.utils.registration import REGISTERED_ENVS

from agents import evaluate as ev
from agents import train as tr
from agents.checkpoint import read_checkpoint
from assets import objects as obj_lib
from dexenvs.experts import EXPERTS
from generators.dataset import demo_names

RESULTS = Path(__file__).parent / "results"
KEY = "extra_obj_extents"


@dataclass
class Args:
    without: Path
    """a base checkpoint trained on a dataset without the size key"""
    out: Path = Path("runs/size_ablation")
    dataset: Path | None = None
    """the dataset `--without` trained on, where it has moved since (default: the path its checkpoint records)"""
    seeds: int = 5
    episodes: int = 8
    workers: int = 2


def add_size(src: Path, dst: Path) -> Path:
    """A copy of `src` with `KEY` added to every demo from its scenario's object (written beside, then renamed)."""
    tmp = dst.with_suffix(".tmp.hdf5")
    shutil.copy(src, tmp)
    with h5py.File(tmp, "a") as f:
        for n in demo_names(f):
            g = f["data"][n]
            if KEY in g["obs"]:
                raise ValueError(f"{src} already has {KEY} (demo {n}); this compares against a dataset without it")
            size = np.asarray(obj_lib.get_object(str(g.attrs["scenario"]).split("|")[0]).extents, np.float32)
            g["obs"].create_dataset(KEY, data=np.tile(size, (len(g["obs"]["extra_obj_pose"]), 1)))
    tmp.replace(dst)
    return dst


def main(args: Args) -> dict:
    cfg = read_checkpoint(args.without)["config"]
    if KEY in cfg["low_dim"]:
        raise ValueError(f"{args.without} already observes {KEY}; pass a base trained without it")
    env_id = cfg["env_args"]["env_name"]
    task = next(t for t, (e, *_) in EXPERTS.items() if e == env_id)
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "with_size.hdf5"
    source = args.dataset or Path(cfg["dataset"])
    if not data.exists():
        add_size(source, data)
    known = {f.name for f in fields(tr.Args)}
    train_args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg["train_args"].items() if k in known}
    tr.main(tr.Args(**dict(train_args, dataset=data, out=args.out / "base", resume=True, progress=False)))
    scenarios = [str(s) for s in REGISTERED_ENVS[env_id].cls.scenario_space().scenarios("test_oep")]
    rows = {}
    for name, ckpt in (("without size", args.without), ("with size", args.out / "base" / "checkpoint.pt")):
        s = ev.evaluate(ckpt, env_id, "train", args.seeds, args.episodes, args.workers, scenarios=scenarios)
        rows[name] = dict(ckpt=str(ckpt), mean=s["success_mean"], std=s["success_std"], episodes=s["episodes"],
                          per_scenario={k: v["success"] for k, v in s["per_scenario"].items()})
    report = dict(task=task, dataset=str(source), train_args=cfg["train_args"], t_oep=rows)
    (RESULTS / f"size_ablation_{task}.json").write_text(json.dumps(report, indent=1))
    print(f"| {task} base on {source} | SR T_OEP |\n|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['mean']:.1%} ± {r['std']:.1%} ({r['episodes']} episodes) |")
    return report


if __name__ == "__main__":
    main(tyro.cli(Args))
