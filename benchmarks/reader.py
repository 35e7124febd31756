"""Dataset reader throughput, cached vs uncached: `python -m benchmarks.reader [--dataset PATH] [--demos 100]
[--rgb-demos 10] [--seconds 5]`.

Without `--dataset`, generates its own: the grasp seed carried by A_EP into `--demos` state demos and `--rgb-demos`
demos with 128x128 head-camera images. For each, `DemoWindows` (obs history 2, action chunk 16, normalized) is read
in random order one window at a time, cached (in memory) and uncached (from the HDF5 file), then in batches of 256
through a torch DataLoader with 2 worker processes, and (cached) in batches of 256 by `DemoWindows.batch`, as
`agents.train` reads them. With `--train-steps N`, also times N optimizer steps of the default state U-Net fed by
the old per-window DataLoader (no workers) and by `DemoWindows.batch`, alternating, best of 2. Prints windows per
second side by side and writes benchmarks/results/reader.json.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from agents import train
from agents.windows import DemoWindows
from benchmarks.common import ResultArgs, save_result
from dexenvs.cli import Count, ExistingPath, NonNegative, Positive, run_cli
from generators.augment import AugmentConfig, generate
from generators.seed import record_seeds


@dataclass
class Args(ResultArgs):
    dataset: ExistingPath | None = None
    demos: Count = 100
    rgb_demos: NonNegative = 10
    seconds: Positive = 5.0
    train_steps: NonNegative = 0
    out: Path = Path("benchmarks/results")

    def outputs(self) -> list[Path]:
        return [self.out / "reader.json"]


def windows_per_second(ds: DemoWindows, seconds: float) -> float:
    rng = np.random.default_rng(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for i in rng.integers(len(ds), size=64):
            ds[int(i)]
        n += 64
    return n / (time.perf_counter() - t0)


def loader_windows_per_second(ds: DemoWindows, seconds: float, workers: int = 2) -> float:
    loader = torch.utils.data.DataLoader(ds, batch_size=256, shuffle=True, num_workers=workers, persistent_workers=True)
    it = iter(loader)
    next(it)  # workers started
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        n += len(batch["actions"])
    return n / (time.perf_counter() - t0)


def batched_windows_per_second(ds: DemoWindows, seconds: float) -> float:
    rng = np.random.default_rng(0)
    ds.batch(rng.integers(len(ds), size=256))  # the one-off concatenation
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        b = ds.batch(rng.integers(len(ds), size=256))
        {k: torch.from_numpy(v) for k, v in b["obs"].items()}  # counted: agents.train hands torch tensors on
        n += len(b["actions"])
    return n / (time.perf_counter() - t0)


def train_steps_per_second(path: Path, steps: int) -> dict:
    """Optimizer steps/s of the default state diffusion policy, fed per window (DataLoader) vs batched."""

    low, _ = train.select_keys(path, "state")
    ds = DemoWindows(path, sorted(low), 2, 16, mask=None, normalize=False)
    cfg = train.config_of(train.TrainConfig(), path, ds, low, {}, run={})
    model = train.build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)

    def per_window():
        while True:
            yield from torch.utils.data.DataLoader(ds, batch_size=256, shuffle=True, drop_last=True)

    best = dict(per_window=0.0, batched=0.0)
    for _ in range(2):
        for name, data in (("per_window", per_window()), ("batched", train.batches(ds, 256, torch.Generator()))):
            next(data)
            t0 = time.perf_counter()
            for _ in range(steps):
                b = next(data)
                loss = model.loss(b["obs"], b["actions"])
                opt.zero_grad()
                loss.backward()
                opt.step()
            best[name] = max(best[name], steps / (time.perf_counter() - t0))
    return best


def measure(path: Path, keys: list[str] | None, seconds: float) -> dict:
    row = {}
    for cache in (True, False):
        t = time.perf_counter()
        ds = DemoWindows(path, obs_keys=keys, cache=cache)
        row["open_s_" + ("cached" if cache else "uncached")] = round(time.perf_counter() - t, 2)
        row["cached" if cache else "uncached"] = windows_per_second(ds, seconds)
        row["loader_" + ("cached" if cache else "uncached")] = loader_windows_per_second(ds, seconds)
        if cache:
            row["batched"] = batched_windows_per_second(ds, seconds)
    row.update(windows=len(ds), demos=len(ds.names), keys=ds.obs_keys)
    return row


def main(args: Args) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        sets = []
        if args.dataset:
            sets.append(("given", args.dataset, None))
        else:
            src = record_seeds("grasp", Path(tmp) / "seed.hdf5")
            state = Path(tmp) / "state.hdf5"
            generate("grasp", src, state, args.demos, progress=False)
            sets.append(("state", state, None))
            if args.rgb_demos:
                rgb = Path(tmp) / "rgb.hdf5"
                generate("grasp", src, rgb, args.rgb_demos, AugmentConfig(obs_mode="rgb"), progress=False)
                sets.append(("rgb", rgb, ["head_rgb", "agent_qpos"]))
        for name, path, keys in sets:
            results[name] = measure(path, keys, args.seconds)
        if args.train_steps:
            results["train_steps_per_s"] = train_steps_per_second(sets[0][1], args.train_steps)
    print("\nDemoWindows throughput (obs history 2, action chunk 16, normalized), windows/s")
    print(f"{'dataset':8s} {'demos':>5s} {'windows':>7s} {'cached':>9s} {'uncached':>9s} {'ratio':>6s} "
          f"{'loader cached':>14s} {'loader uncached':>16s} {'batched':>9s} {'batched/cached':>14s}")
    for name, r in results.items():
        if name == "train_steps_per_s":
            continue
        print(f"{name:8s} {r['demos']:5d} {r['windows']:7d} {r['cached']:9.0f} {r['uncached']:9.0f} "
              f"{r['cached'] / r['uncached']:5.1f}x {r['loader_cached']:14.0f} {r['loader_uncached']:16.0f} "
              f"{r['batched']:9.0f} {r['batched'] / r['cached']:13.1f}x")
    if "train_steps_per_s" in results:
        t = results["train_steps_per_s"]
        print(f"training steps/s, default state U-Net, batch 256: per-window DataLoader {t['per_window']:.1f}, "
              f"batched {t['batched']:.1f} ({t['batched'] / t['per_window']:.2f}x)")
    save_result(args.out / "reader.json", results, args)
    return results


if __name__ == "__main__":
    run_cli(main, Args)
