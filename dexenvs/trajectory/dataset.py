"""Demonstration datasets in robomimic's HDF5 layout, written so that nothing is lost (the suite's on-disk trajectory
format, as ManiSkill keeps `mani_skill/trajectory`).

Layout (robomimic, plus MimicGen's `datagen_info` and our provenance):
    data                      attrs: total, env_args (JSON: env_name, env_type, env_kwargs, robot, control_mode),
                              and what the generator reports (e.g. `generation`: JSON attempts, success rate, coverage)
    data/demo_i               attrs: num_samples, scenario, seed, reset_options (JSON), success, provenance (JSON)
        actions (T, A)  rewards (T,)  dones (T,)  states (T+1, S): the sim state before each action and after the last
        obs/<key> (T, ...)    flat keys: agent_qpos, extra_obj_pose, ..., head_rgb (uint8 HWC when recorded)
        datagen_info/wrist_pose_<k> (T, 7), datagen_info/obj_pose (T, 7) (and target_pose for DexPour-v0),
        datagen_info/phase (T, hands) int8 with attr phase_names (JSON list)
    mask/train, mask/valid    demo names

Safe writes: while a `DatasetWriter` is open, each finished episode is first written to its own file in
`<path>.episodes/` (temp file + rename), then the small index at `<path>` is rewritten the same way; the index's
`data/demo_i` are HDF5 external links to those files, so h5py (and robomimic) read it as one file. A writer killed at
any point leaves an index holding every completed episode. `close()` consolidates everything into one self-contained
file (again temp + rename) and removes the episode files; `DatasetWriter(path, resume=True)` continues an index or a
consolidated file.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from dexenvs.cli import DexError, UsageError
from dexenvs.results import atomic_write

FORMAT = "dexsuite-robomimic-1"


class DatasetError(DexError, ValueError):
    """The file is not a readable dexsuite dataset; the message says why."""


@dataclass
class Episode:
    actions: np.ndarray
    obs: dict[str, np.ndarray]
    rewards: np.ndarray
    dones: np.ndarray
    states: np.ndarray
    datagen_info: dict[str, np.ndarray]
    scenario: str
    seed: int
    reset_options: dict = field(default_factory=dict)
    success: bool = False
    phase_names: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.actions)


def _atomic_h5(path: Path, write) -> None:
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            write(f)


def _write_episode(g: h5py.Group, ep: Episode) -> None:
    g.attrs.update(num_samples=len(ep), scenario=ep.scenario, seed=int(ep.seed), success=bool(ep.success),
                   reset_options=json.dumps(ep.reset_options), provenance=json.dumps(ep.provenance))
    g.create_dataset("actions", data=np.asarray(ep.actions, dtype=np.float32))
    g.create_dataset("rewards", data=np.asarray(ep.rewards, dtype=np.float32))
    g.create_dataset("dones", data=np.asarray(ep.dones, dtype=np.uint8))
    g.create_dataset("states", data=np.asarray(ep.states, dtype=np.float32))
    for k, v in ep.obs.items():
        v = np.asarray(v)
        big = v.dtype == np.uint8 and v.ndim == 4
        g.create_dataset(f"obs/{k}", data=v, chunks=(1, *v.shape[1:]) if big else None,
                         compression="gzip" if big else None, compression_opts=4 if big else None)
    dg = g.create_group("datagen_info")
    for k, v in ep.datagen_info.items():
        dg.create_dataset(k, data=np.asarray(v))
    dg.attrs["phase_names"] = json.dumps(list(ep.phase_names))


def read_episode(g: h5py.Group) -> Episode:
    dg = g["datagen_info"]
    return Episode(actions=g["actions"][()], obs={k: g["obs"][k][()] for k in g["obs"]}, rewards=g["rewards"][()],
                   dones=g["dones"][()], states=g["states"][()], datagen_info={k: dg[k][()] for k in dg},
                   scenario=str(g.attrs["scenario"]), seed=int(g.attrs["seed"]),
                   reset_options=json.loads(g.attrs["reset_options"]), success=bool(g.attrs["success"]),
                   phase_names=json.loads(dg.attrs["phase_names"]), provenance=json.loads(g.attrs["provenance"]))


def open_dataset(path: str | Path) -> h5py.File:
    """Opens a dataset for reading, with a clear error for a missing, corrupt or foreign file."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"no dataset at {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path} is not a readable HDF5 file (corrupt or not HDF5): {e}") from None
    if "data" not in f or "env_args" not in f["data"].attrs:
        keys = list(f.keys())
        f.close()
        raise DatasetError(f"{path} is HDF5 but not a robomimic-layout dataset: no data group with env_args "
                           f"(top-level keys: {keys})")
    return f


def env_args(path: str | Path) -> dict:
    with open_dataset(path) as f:
        return json.loads(f["data"].attrs["env_args"])


def demo_names(f: h5py.File) -> list[str]:
    return sorted(f["data"].keys(), key=lambda k: int(k.split("_")[1]))


class DatasetWriter:
    """Appends episodes to `path` safely (see the module doc); `valid_fraction` of the demos go to mask/valid."""

    def __init__(self, path: str | Path, env_args: dict, resume: bool = False, valid_fraction: float = 0.1):
        self.path = Path(path)
        self.parts = self.path.with_name(self.path.name + ".episodes")
        self.env_args = dict(env_args, format=FORMAT)
        self.valid_fraction = valid_fraction
        self.names: list[str] = []
        self.lengths: dict[str, int] = {}
        self.meta: dict[str, dict] = {}  # name -> scenario, seed, success, provenance: served to resuming generators
        self.attrs: dict[str, str] = {}  # extra `data` attributes (JSON strings), e.g. a generator's report
        if self.path.exists() and not resume:
            raise UsageError("out", self.path, "exists; pass --resume (resume=True) to add to it, or choose another")
        if self.path.exists():
            self._adopt()
        self.parts.mkdir(parents=True, exist_ok=True)
        for tmp in self.parts.glob("*.tmp*"):  # a write the last run did not finish
            tmp.unlink()

    def _adopt(self) -> None:
        """Resume: move a consolidated file's episodes out into episode files, or take an index's links as they are."""
        with open_dataset(self.path) as f:
            old = json.loads(f["data"].attrs["env_args"])
            if old.get("env_name") != self.env_args.get("env_name"):
                raise DatasetError(f"{self.path} holds {old.get('env_name')} demos, not {self.env_args.get('env_name')}")
            self.attrs = {k: str(v) for k, v in f["data"].attrs.items() if k not in ("total", "env_args")}
            for name in demo_names(f):
                g = f["data"][name]
                self.meta[name] = dict(scenario=str(g.attrs["scenario"]), seed=int(g.attrs["seed"]),
                                       success=bool(g.attrs["success"]), provenance=json.loads(g.attrs["provenance"]))
                self.lengths[name] = int(g.attrs["num_samples"])
                self.names.append(name)
                link = f["data"].get(name, getlink=True)
                if not isinstance(link, h5py.ExternalLink):
                    self.parts.mkdir(parents=True, exist_ok=True)
                    _atomic_h5(self.parts / f"{name}.h5", lambda out, g=g: _write_episode(out.create_group("demo"), read_episode(g)))

    def __len__(self) -> int:
        return len(self.names)

    def add(self, ep: Episode) -> str:
        name = f"demo_{len(self.names)}"
        _atomic_h5(self.parts / f"{name}.h5", lambda f: _write_episode(f.create_group("demo"), ep))
        self.names.append(name)
        self.lengths[name] = len(ep)
        self.meta[name] = dict(scenario=ep.scenario, seed=ep.seed, success=ep.success, provenance=ep.provenance)
        self._write_index()
        return name

    def _masks(self) -> tuple[list[str], list[str]]:
        n_valid = int(round(self.valid_fraction * len(self.names))) if len(self.names) > 1 else 0
        # every k-th demo is held out, so a growing dataset keeps its split stable
        k = max(1, len(self.names) // n_valid) if n_valid else 0
        valid = [n for i, n in enumerate(self.names) if k and i % k == k - 1][:n_valid]
        return [n for n in self.names if n not in valid], valid

    def _header(self, f: h5py.File) -> h5py.Group:
        data = f.create_group("data")
        data.attrs["total"] = sum(self.lengths.values())
        data.attrs["env_args"] = json.dumps(self.env_args)
        for k, v in self.attrs.items():
            data.attrs[k] = v
        train, valid = self._masks()
        f.create_dataset("mask/train", data=np.array(train, dtype="S"))
        f.create_dataset("mask/valid", data=np.array(valid, dtype="S"))
        return data

    def _write_index(self) -> None:
        def write(f):
            data = self._header(f)
            for n in self.names:  # relative paths: the dataset folder can move
                data[n] = h5py.ExternalLink(f"{self.parts.name}/{n}.h5", "/demo")
        _atomic_h5(self.path, write)

    def close(self, consolidate: bool = True) -> Path:
        """Writes the final file: one self-contained HDF5 (consolidate) or the linked index."""
        if not consolidate:
            self._write_index()
            return self.path

        def write(f):
            data = self._header(f)
            for n in self.names:
                with h5py.File(self.parts / f"{n}.h5", "r") as src:
                    src.copy(src["demo"], data, name=n)
        _atomic_h5(self.path, write)
        shutil.rmtree(self.parts, ignore_errors=True)
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        self.close(consolidate=exc_type is None)


def merge_datasets(sources: list[Path], out: str | Path) -> Path:
    """One dataset of every demo of `sources`, in order, written atomically over `out` (a merge cut short is redone
    from the start). The sources must hold demos of one env made alike (its kwargs: observation mode, controller)."""
    out = Path(out)
    if not sources:
        raise ValueError("merge_datasets needs at least one source")
    heads = [env_args(s) for s in sources]
    for key in ("env_name", "env_kwargs"):
        if any(h.get(key) != heads[0].get(key) for h in heads):
            raise DatasetError(f"cannot merge datasets with different {key}: "
                               + ", ".join(f"{s} ({h.get(key)})" for s, h in zip(sources, heads)))
    shutil.rmtree(out.with_name(out.name + ".episodes"), ignore_errors=True)
    out.unlink(missing_ok=True)
    with DatasetWriter(out, heads[0]) as w:
        for s in sources:
            with open_dataset(s) as f:
                for n in demo_names(f):
                    w.add(read_episode(f["data"][n]))
    return out
