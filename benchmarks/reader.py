"""Dataset reader throughput, cached vs uncached: `python -m benchmarks.reader [--dataset PATH] [--demos 100]
[--rgb-demos 10] [--seconds 5]`.

Without `--dataset`, generates its own: the grasp seed carried by A_EP into `--demos` state demos and `--rgb-demos`
demos with 128x128 head-camera images. For each, `DemoWindows` (obs history 2, action chunk 16, normalized) is read
in random order one window at a time, cached (in memory) and uncached (from the HDF5 file), then in batches of 256
through a torch DataLoader with 2 worker processes. Prints windows per second side by side and writes
benchmarks/results/reader.json.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from generators import augment, seed
from generators.dataset import DemoWindows


@dataclass
class Args:
    dataset: Path | None = None
    demos: int = 100
    rgb_demos: int = 10
    seconds: float = 5.0
    out: Path = Path("benchmarks/results")


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


def measure(path: Path, keys: list[str] | None, seconds: float) -> dict:
    row = {}
    for cache in (True, False):
        t = time.perf_counter()
        ds = DemoWindows(path, obs_keys=keys, cache=cache)
        row["open_s_" + ("cached" if cache else "uncached")] = round(time.perf_counter() - t, 2)
        row["cached" if cache else "uncached"] = windows_per_second(ds, seconds)
        row["loader_" + ("cached" if cache else "uncached")] = loader_windows_per_second(ds, seconds)
    row.update(windows=len(ds), demos=len(ds.names), keys=ds.obs_keys)
    return row


def main(args: Args) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        sets = []
        if args.dataset:
            sets.append(("given", args.dataset, None))
        else:
            src = seed.main(seed.Args(task="grasp", out=Path(tmp) / "seed.hdf5"))
            state = Path(tmp) / "state.hdf5"
            augment.main(augment.Args(task="grasp", num=args.demos, source=src, out=state, progress=False))
            sets.append(("state", state, None))
            if args.rgb_demos:
                rgb = Path(tmp) / "rgb.hdf5"
                augment.main(augment.Args(task="grasp", num=args.rgb_demos, source=src, out=rgb, obs_mode="rgb",
                                          progress=False))
                sets.append(("rgb", rgb, ["head_rgb", "agent_qpos"]))
        for name, path, keys in sets:
            results[name] = measure(path, keys, args.seconds)
    print("\nDemoWindows throughput (obs history 2, action chunk 16, normalized), windows/s")
    print(f"{'dataset':8s} {'demos':>5s} {'windows':>7s} {'cached':>9s} {'uncached':>9s} {'ratio':>6s} "
          f"{'loader cached':>14s} {'loader uncached':>16s}")
    for name, r in results.items():
        print(f"{name:8s} {r['demos']:5d} {r['windows']:7d} {r['cached']:9.0f} {r['uncached']:9.0f} "
              f"{r['cached'] / r['uncached']:5.1f}x {r['loader_cached']:14.0f} {r['loader_uncached']:16.0f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reader.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main(tyro.cli(Args))
