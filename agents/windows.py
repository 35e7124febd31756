"""`DemoWindows`: training windows (observation history, action chunk) over a dexsuite dataset
(`dexenvs.trajectory.dataset`), with per-key statistics and [-1, 1] normalization."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from dexenvs.trajectory.dataset import DatasetError, demo_names, open_dataset


class DemoWindows:
    """Training windows over a dataset, as a torch-style map dataset (len, getitem): each item is
    `{"obs": {key: (obs_horizon, ...)}, "actions": (action_horizon, A)}` starting at one step of one demo, padded at the
    episode's ends by repeating its first observation and last action (diffusion_policy's convention).

    `mask`: "train", "valid" or None (all demos). `cache=True` loads the chosen keys into memory once; `cache=False`
    reads each window from the file (for datasets larger than memory). `stats` holds per-key min/max/mean/std over the
    chosen demos; `normalize=True` maps low-dimensional keys and actions to [-1, 1] by min/max and images to [0, 1]."""

    def __init__(self, path: str | Path, obs_keys: list[str] | None = None, obs_horizon: int = 2,
                 action_horizon: int = 16, mask: str | None = "train", cache: bool = True, normalize: bool = True):
        self.path = Path(path)
        self.obs_horizon, self.action_horizon = obs_horizon, action_horizon
        self.cache, self.normalize = cache, normalize
        with open_dataset(self.path) as f:
            names = demo_names(f)
            if mask is not None:
                if f"mask/{mask}" not in f:
                    raise DatasetError(f"{self.path} has no mask {mask!r}; masks: {list(f.get('mask', {}).keys())}")
                chosen = {n.decode() for n in f[f"mask/{mask}"][()]}
                names = [n for n in names if n in chosen]
            if not names:
                raise DatasetError(f"{self.path}: no demos in mask {mask!r}")
            available = list(f["data"][names[0]]["obs"].keys())
            self.obs_keys = list(obs_keys) if obs_keys is not None else available
            missing = sorted(set(self.obs_keys) - set(available))
            if missing:
                raise DatasetError(f"{self.path} has no obs keys {missing}; available: {available}")
            self.names = names
            self.lengths = [int(f["data"][n].attrs["num_samples"]) for n in names]
            self._data = {n: self._load(f["data"][n]) for n in names} if cache else None
            self.stats = self._stats(f)
        self.index = [(d, t) for d, n in enumerate(self.lengths) for t in range(n)]
        self._file = None
        self._flat = None

    def _load(self, g) -> dict:
        return dict(actions=g["actions"][()], **{k: g["obs"][k][()] for k in self.obs_keys})

    def _stats(self, f) -> dict:
        out = {}
        for key in ["actions"] + self.obs_keys:
            arrs = [(self._data[n] if self._data else self._load(f["data"][n]))[key] for n in self.names]
            a = np.concatenate(arrs).astype(np.float64)
            if a.ndim == 4:  # images: fixed [0, 255]
                out[key] = dict(min=0.0, max=255.0, mean=float(a.mean()), std=float(a.std()))
                continue
            out[key] = dict(min=a.min(0), max=a.max(0), mean=a.mean(0), std=a.std(0))
        return out

    def __len__(self) -> int:
        return len(self.index)

    def _norm(self, key: str, x: np.ndarray) -> np.ndarray:
        s = self.stats[key]
        if x.dtype == np.uint8:
            return x.astype(np.float32) / 255.0
        span = np.maximum(s["max"] - s["min"], 1e-6)
        return (2 * (x - s["min"]) / span - 1).astype(np.float32)

    def unnormalize_actions(self, a: np.ndarray) -> np.ndarray:
        s = self.stats["actions"]
        return (a + 1) / 2 * np.maximum(s["max"] - s["min"], 1e-6) + s["min"]

    def batch(self, idx) -> dict:
        """Windows `idx` at once, the same as stacking `self[i]` for i in idx: a few fancy-indexing ops on the demos
        concatenated, instead of a Python call and a collate per window, which cost a noticeable share of a CPU
        training step and half of one on a GPU (`benchmarks.reader --train-steps`). Cached datasets only."""
        if self._data is None:
            raise ValueError("DemoWindows.batch needs cache=True; index windows one by one otherwise")
        if self._flat is None:
            arrays = {k: np.concatenate([self._data[n][k] for n in self.names]) for k in ["actions", *self.obs_keys]}
            starts = np.cumsum([0, *self.lengths[:-1]])
            d, t = np.asarray(self.index).T
            self._flat = arrays, starts[d], np.asarray(self.lengths)[d], t
        arrays, start, length, t = self._flat
        idx = np.asarray(idx)
        start, last, t = start[idx, None], length[idx, None] - 1, t[idx, None]
        obs_rows = start + np.clip(t + np.arange(1 - self.obs_horizon, 1), 0, last)
        act_rows = start + np.clip(t + np.arange(self.action_horizon), 0, last)
        obs = {k: arrays[k][obs_rows] for k in self.obs_keys}
        actions = arrays["actions"][act_rows]
        if self.normalize:
            obs = {k: self._norm(k, v) for k, v in obs.items()}
            actions = self._norm("actions", actions)
        return dict(obs=obs, actions=actions)

    def __getitem__(self, i: int) -> dict:
        d, t = self.index[i]
        n = self.lengths[d]
        obs_t = np.clip(np.arange(t - self.obs_horizon + 1, t + 1), 0, n - 1)
        act_t = np.clip(np.arange(t, t + self.action_horizon), 0, n - 1)
        if self._data is not None:
            src = self._data[self.names[d]]
            get = lambda key, idx: src[key][idx]  # noqa: E731
        else:
            if self._file is None:  # one handle per process (DataLoader workers open their own)
                self._file = h5py.File(self.path, "r")
            g = self._file["data"][self.names[d]]

            def get(key, idx):  # one contiguous read; the padding repeats rows h5py would not index twice
                rows = (g["actions"] if key == "actions" else g["obs"][key])[idx[0] : idx[-1] + 1]
                return rows[idx - idx[0]]
        obs = {k: get(k, obs_t) for k in self.obs_keys}
        actions = get("actions", act_t)
        if self.normalize:
            obs = {k: self._norm(k, v) for k, v in obs.items()}
            actions = self._norm("actions", actions)
        return dict(obs=obs, actions=actions)
