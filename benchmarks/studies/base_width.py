"""How wide and how large a batch does a two-hand base need? The same diffusion base trained on one dataset at several
U-Net widths and batch sizes, side by side: training samples/s, minutes, final loss and success.

    python -m benchmarks.studies.base_width --dataset runs/flywheel/lift_unet64-128/D1.hdf5 \
        --configs 64x256 96x256 128x256 128x128 --steps 4000 --out runs/base_width/lift_d1

Each config `WxB` trains `down_dims=(W, 2W)` at batch B for `--steps` steps (the flywheel's i = 1 budget by default)
into `<out>/w<W>_b<B>` (resumed if unfinished, skipped if done), then plays `--seeds` x `--episodes` episodes on the
flywheel's T_O^1 (the task's seed scenarios, `--scenarios` to change) and on T_OEP (the 40 held-out configurations),
the seeds and episodes the flywheel evaluates with. On this CPU a two-hand base's training is most of a lift or
handover flywheel run; this measures what a narrower or smaller-batch base would cost in success.
Writes benchmarks/results/base_width_<task>.json.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path


from agents import evaluate as ev
from agents import train as tr
from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, ExistingPath, UsageError, run_cli
from dexenvs.tasks import task_of_env
from dexenvs.trajectory import open_dataset


@dataclass
class Args(ResultArgs):
    dataset: ExistingPath
    configs: tuple[str, ...] = ("64x256", "96x256", "128x256", "128x128")
    """U-Net first width x batch size; the second width is twice the first"""
    steps: Count = 4000
    scenarios: tuple[str, ...] | None = None
    """T_O: object|environment|pose scenarios; default the task's flywheel seeds (its spec's preset)"""
    out: Path = Path("runs/base_width")
    seeds: Count = 5
    episodes: Count = 8
    workers: Count = 2

    def check(self) -> None:
        for c in self.configs:
            if not re.fullmatch(r"[1-9][0-9]*x[1-9][0-9]*", c):
                raise UsageError("configs", c, "expected WIDTHxBATCH, e.g. 128x256")
        ResultArgs.check(self)


def parse_config(c: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", c)
    if not m:
        raise ValueError(f"--configs {c!r}: expected WIDTHxBATCH, e.g. 128x256 (down_dims (128, 256), batch 256)")
    return int(m.group(1)), int(m.group(2))


def main(args: Args) -> dict:
    configs = [parse_config(c) for c in args.configs]
    with open_dataset(args.dataset) as f:
        env_id = json.loads(f["data"].attrs["env_args"])["env_name"]
    spec = task_of_env(env_id)
    task = spec.name
    t_o = list(args.scenarios or spec.flywheel.seed_scenarios)
    t_oep = [str(s) for s in spec.scenario_space().scenarios("test_oep")]
    rows = {}
    for w, b in configs:
        name = f"{w}x{b}"
        base = args.out / f"w{w}_b{b}"
        summary = tr.train(args.dataset, base, tr.TrainConfig(batch_size=b, down_dims=(w, 2 * w)), args.steps,
                           resume=True)
        ckpt = base / "checkpoint.pt"
        row = dict(down_dims=[w, 2 * w], batch_size=b, params=summary["params"], minutes=summary["seconds"] / 60,
                   samples_per_second=summary["samples_per_second"], final_loss=summary["final_loss"])
        for set_name, scenarios in (("T_O", t_o), ("T_OEP", t_oep)):
            s = ev.evaluate(ckpt, env_id, "train", args.seeds, args.episodes, args.workers, scenarios=scenarios)
            row[set_name] = dict(mean=s["success_mean"], std=s["success_std"], episodes=s["episodes"])
        rows[name] = row
        print(f"[base_width] {name}: {row['minutes']:.1f} min, loss {row['final_loss']:.4f}, "
              f"T_O {row['T_O']['mean']:.1%}, T_OEP {row['T_OEP']['mean']:.1%}")
    report = dict(task=task, dataset=str(args.dataset), steps=args.steps, T_O=t_o, configs=rows)
    save_result(RESULTS / f"base_width_{task}.json", report, args)
    print(f"\n| {task}, {args.steps} steps on {args.dataset.name} | params | samples/s | min | final loss | T_O | T_OEP |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| ({r['down_dims'][0]}, {r['down_dims'][1]}), batch {r['batch_size']} | {r['params'] / 1e6:.2f}M | "
              f"{r['samples_per_second']:.0f} | {r['minutes']:.1f} | {r['final_loss']:.4f} | "
              f"{r['T_O']['mean']:.1%} ± {r['T_O']['std']:.1%} | {r['T_OEP']['mean']:.1%} ± {r['T_OEP']['std']:.1%} |")
    return report


if __name__ == "__main__":
    run_cli(main, Args)
