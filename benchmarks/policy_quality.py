"""Policy quality on this CPU: `python -m benchmarks.policy_quality [--demos 100] [--minutes 30]`.

The grasp seed -> A_EP (`--demos` successful demos, + 10% for the valid mask) -> train the diffusion policy and BC with
the CLI defaults under a `--minutes` budget each -> evaluate each on train, test_objects and test_oep (`--episodes` x
`--seeds`). Prints one table and writes benchmarks/results/policy_quality.json; checkpoints stay in `--work`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agents.evaluate import evaluate
from agents.train import TrainConfig, train
from benchmarks.common import ResultArgs, save_result
from dexenvs.cli import Count, Positive, run_cli
from dexenvs.rates import format_rate
from generators.augment import generate
from generators.seed import record_seeds

SPLITS = ("train", "test_objects", "test_oep")


@dataclass
class Args(ResultArgs):
    demos: Count = 100
    minutes: Positive = 30.0
    episodes: Count = 20
    seeds: Count = 3
    work: Path = Path("runs/policy_quality")
    out: Path = Path("benchmarks/results")

    def outputs(self) -> list[Path]:
        return [self.out / "policy_quality.json"]


def main(args: Args) -> dict:
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / "grasp_aep.hdf5"
    if not data.exists():
        src = record_seeds("grasp", args.work / "seed.hdf5")
        generate("grasp", src, data, int(args.demos * 1.1), progress=False)
    results = {}
    for algo in ("diffusion", "bc"):
        run = args.work / algo
        t = train(data, run, TrainConfig(algo=algo), minutes=args.minutes, resume=True, progress=False)
        results[algo] = dict(training=t, **{sp: evaluate(run / "checkpoint.pt", None, sp, args.seeds, args.episodes)
                                         for sp in SPLITS})
        for sp in SPLITS:
            results[algo][sp].pop("results")
    print(f"\nDexGrasp-v0 success over {args.seeds} seeds x {args.episodes} episodes (95% interval), {args.demos} "
          f"A_EP demos")
    print(f"{'algo':10s} {'steps':>6s} {'train min':>9s} " + " ".join(f"{sp:>30s}" for sp in SPLITS))
    for algo, r in results.items():
        cells = " ".join(f"{format_rate(r[sp]['successes'], r[sp]['episodes']):>30s}" for sp in SPLITS)
        print(f"{algo:10s} {r['training']['step']:6d} {r['training']['seconds'] / 60:9.1f} {cells}")
    save_result(args.out / "policy_quality.json", results, args)
    return results


if __name__ == "__main__":
    run_cli(main, Args)
