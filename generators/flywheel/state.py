"""A flywheel run's record on disk: `<out>/state.json` holds the run's settings and every finished stage with its
result and time, rewritten atomically after each stage. Running the same command again skips what is recorded; other
settings for the same directory are refused (except more training steps, which train the bases on), and so is a
second run on the same directory."""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import time
from pathlib import Path
from typing import Callable, TypeVar

from dexenvs.cli import DexError, UsageError
from dexenvs.results import save_json, to_jsonable
from generators.flywheel.config import per_iter

T = TypeVar("T")


def flatten(settings: dict, prefix: str = "") -> dict:
    """Nested settings as one level of dotted keys ("base.lr")."""
    out = {}
    for k, v in settings.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


class StageLog:
    def __init__(self, out: Path, settings: dict, restart: bool):
        self.path = out / "state.json"
        if restart and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        self._lock = (out / ".lock").open("w")
        try:  # two runs writing one directory would corrupt each other's datasets
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DexError(f"another flywheel run is using {out}", hint="wait for it or choose another --out") from None
        if self.path.exists():
            self.state = json.loads(self.path.read_text())
            old, new = flatten(self.state["settings"]), flatten(settings)
            changed = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}
            if set(changed) == {"train_steps"}:
                self._train_longer(out, *changed.pop("train_steps"))
            if changed:
                self.close()
                raise UsageError("out", out, "holds a run with other settings ("
                                 + ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in changed.items())
                                 + "); pass --restart to discard it, or choose another")
            self.state["runs"] += 1
        else:
            self.state = dict(settings=settings, stages={}, runs=1)
        self._save()

    def close(self) -> None:
        self._lock.close()

    def _train_longer(self, out: Path, old: list[int], new: list[int]) -> None:
        """More training steps on this run: the first trained base whose steps changed trains on from its checkpoint
        (agents.train gives the added steps their own warm-up and cosine) on the same D_i, and everything after it
        (its evaluation, residual and rollouts, the later iterations) reruns from there."""
        stages = self.state["stages"]
        changed = [i for i in range(1, self.state["settings"]["iters"] + 1)
                   if per_iter(old, i) != per_iter(new, i) and f"{i}.train" in stages]
        self.state["settings"]["train_steps"] = new
        if not changed:
            return
        i = changed[0]
        trained = stages[f"{i}.train"]["result"]["step"]
        if per_iter(new, i) < trained:
            self.close()
            raise UsageError("train_steps", new, f"the base of iteration {i} in {out} has trained {trained} steps; it "
                                                f"can train longer, not shorter (pass --restart to discard the run, or "
                                                f"choose another --out)")
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
              f"{trained} to {per_iter(new, i)}; the stages after it rerun")

    def _save(self) -> None:
        save_json(self.path, self.state)

    def done(self, name: str) -> bool:
        return name in self.state["stages"]

    def seconds(self) -> dict[str, float]:
        return {k: v["seconds"] for k, v in self.state["stages"].items()}

    def run(self, name: str, title: str, fn: Callable[[], T], load: Callable[[dict], T]) -> T:
        """`fn()`'s result, or the recorded one (`load` turns its JSON back into the result's type)."""
        if self.done(name):
            print(f"[flywheel] {name} {title}: finished earlier, skipped")
            return load(self.state["stages"][name]["result"])
        print(f"[flywheel] {name} {title} ...", flush=True)
        t = time.perf_counter()
        result = fn()
        self.state["stages"][name] = dict(result=to_jsonable(result), seconds=round(time.perf_counter() - t, 1),
                                          run=self.state["runs"])
        self._save()
        return result
