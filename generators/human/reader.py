"""Reads episodes in the EgoDex layout (`layout.py`): real EgoDex files and the simulation stand-in alike.

`EgoDexEpisode(path)` checks the file's layout when it is opened (so a wrong file fails at once, with one line naming
what is missing or wrong) but reads arrays only when asked, and the video only frame by frame: a dataset of
thousands of episodes is indexed without loading them. `windows` cuts an episode into EgoDex's trajectory-prediction
samples.
"""

from __future__ import annotations

import json

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import h5py
import numpy as np

from dexenvs.cli import DexError
from generators.human import layout

HORIZON_1S = 1 * layout.FPS
HORIZON_2S = 2 * layout.FPS
_HINT = ("an EgoDex episode holds transforms/<joint> (N,4,4) for camera and every joint of generators/human/layout.py, "
         "confidences/<joint> (N,), camera/intrinsic (3,3) and an llm_description attribute")
_MAX_NAMES = 12  # missing joints named in an error line before the rest are counted


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    return shown + (f" (+{len(names) - _MAX_NAMES} more)" if len(names) > _MAX_NAMES else "")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def layout_problems(f: h5py.File) -> list[str]:
    """What keeps an open file from being an EgoDex episode, one phrase per problem (empty: none)."""
    problems = []
    tf = f.get("transforms")
    if not isinstance(tf, h5py.Group):
        return ["no transforms group"]
    if layout.CAMERA not in tf:
        problems.append(f"missing transforms/{layout.CAMERA}")
    missing = [j for j in layout.JOINTS if j not in tf]
    if missing:
        problems.append(f"missing transforms for {len(missing)} joint(s): {_names(missing)}")
    lengths = {}
    for j in (layout.CAMERA,) + layout.JOINTS:
        if j in tf:
            shape = tf[j].shape
            if len(shape) != 3 or shape[1:] != (4, 4):
                problems.append(f"transforms/{j} is {shape}, expected (N, 4, 4)")
            else:
                lengths[j] = shape[0]
    n = lengths.get(layout.CAMERA, next(iter(lengths.values()), None))
    off = [j for j, m in lengths.items() if m != n]
    if off:
        problems.append(f"transforms of another length than {n} frames: {_names(off)}")
    conf = f.get("confidences")
    need = [j for j in layout.KEYPOINTS if not (isinstance(conf, h5py.Group) and j in conf)]
    if need:
        problems.append(f"missing confidences for {len(need)} joint(s): {_names(need)}")
    if isinstance(conf, h5py.Group):
        bad = [j for j in layout.JOINTS if j in conf and conf[j].shape != (n,)]
        if bad:
            problems.append(f"confidences not ({n},): " + ", ".join(f"{j} {conf[j].shape}" for j in bad[:_MAX_NAMES]))
    if layout.INTRINSIC not in f:
        problems.append(f"no {layout.INTRINSIC}")
    elif f[layout.INTRINSIC].shape != (3, 3):
        problems.append(f"{layout.INTRINSIC} is {f[layout.INTRINSIC].shape}, expected (3, 3)")
    if "llm_description" not in f.attrs:
        problems.append("no llm_description attribute")
    return problems


class EgoDexEpisode:
    """One episode: poses, confidences and language from `<i>.hdf5`, frames from the `<i>.mp4` beside it."""

    fps = layout.FPS

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DexError(f"{self.path}: no such episode file", hint="give a <task>/<i>.hdf5 of an EgoDex dataset")
        try:
            with h5py.File(self.path, "r") as f:
                problems = layout_problems(f)
                if not problems:
                    self._len = int(f["transforms"][layout.CAMERA].shape[0])
                    self.intrinsic = np.asarray(f[layout.INTRINSIC][()], dtype=np.float64)
                    self.task = _text(f.attrs.get("task", self.path.parent.name))
                    self.language = self._description(f.attrs)
        except OSError as e:
            raise DexError(f"{self.path}: not an HDF5 file ({e})", hint=_HINT) from None
        if problems:
            raise DexError(f"{self.path}: not in the EgoDex layout: " + "; ".join(problems), hint=_HINT)
        self.video_path = self.path.with_suffix(".mp4")
        self._cache: dict[str, np.ndarray] = {}

    @staticmethod
    def _description(attrs) -> str:
        """EgoDex's reversible tasks carry two descriptions and say which one this recording shows."""
        if _text(attrs.get("which_llm_description", "1")) == "2" and "llm_description2" in attrs:
            return _text(attrs["llm_description2"])
        return _text(attrs["llm_description"])

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"EgoDexEpisode({str(self.path)!r}, {self._len} frames, task={self.task!r})"

    # ---- raw arrays, read on first use ------------------------------------------------------------------------------
    def _read(self, key: str) -> np.ndarray:
        if key not in self._cache:
            with h5py.File(self.path, "r") as f:
                self._cache[key] = np.asarray(f[key][()], dtype=np.float64)
        return self._cache[key]

    def transform(self, joint: str) -> np.ndarray:
        """(N, 4, 4) world poses of `camera` or a joint of `layout.JOINTS`."""
        return self._read(f"transforms/{joint}")

    def confidence(self, joint: str) -> np.ndarray:
        """(N,) in [0, 1]; a joint without stored confidences counts as fully confident."""
        key = f"confidences/{joint}"
        if key not in self._cache:
            with h5py.File(self.path, "r") as f:
                self._cache[key] = (np.asarray(f[key][()], dtype=np.float64) if key in f else np.ones(self._len))
        return self._cache[key]

    def camera(self) -> np.ndarray:
        return self.transform(layout.CAMERA)

    def object_poses(self) -> np.ndarray | None:
        """(N, 4, 4) world poses of the manipulated object, or None: EgoDex tracks no objects; a file from an object
        tracker (or the stand-in) may carry `transforms/object`."""
        with h5py.File(self.path, "r") as f:
            if f"transforms/{layout.OBJECT}" not in f:
                return None
        return self.transform(layout.OBJECT)

    @property
    def up(self) -> np.ndarray:
        """The world's up axis (3,): the file's `world_up`, else ARKit's +y (EgoDex's world frame)."""
        with h5py.File(self.path, "r") as f:
            up = f.attrs.get("world_up")
        return np.asarray(json.loads(up) if up is not None else layout.ARKIT_UP, dtype=np.float64)

    def _world_hands(self) -> tuple[np.ndarray, np.ndarray]:
        """World wrist poses (N, 2, 4, 4) and fingertip positions (N, 2, 5, 3), left then right."""
        wrists = np.stack([self.transform(layout.wrist(s)) for s in layout.SIDES], 1)
        tips = np.stack([np.stack([self.transform(layout.fingertip(s, f))[:, :3, 3] for f in layout.FINGERS], 1)
                         for s in layout.SIDES], 1)
        return wrists, tips

    # ---- what a learner reads ---------------------------------------------------------------------------------------
    def actions(self) -> np.ndarray:
        """(N, 48) float32: each step's action in that step's camera frame (layout.ACTION_NAMES)."""
        return layout.action_in_frame(self.camera(), *self._world_hands())

    def actions_in_frame_of(self, t: int, steps: np.ndarray) -> np.ndarray:
        """(len(steps), 48): the actions of `steps`, all in the camera frame of step `t`."""
        wrists, tips = self._world_hands()
        return layout.action_in_frame(self.camera()[t], wrists[steps], tips[steps])

    def keypoints(self) -> np.ndarray:
        """(N, 12, 3) float32: both wrists and fingertips (layout.KEYPOINTS) in each step's camera frame."""
        a = self.actions().reshape(len(self), 2, 24)
        return np.concatenate([a[:, :, None, :3], a[:, :, 9:].reshape(len(self), 2, 5, 3)], 2).reshape(len(self), 12, 3)

    def control_frames(self, hz: float) -> np.ndarray:
        """The frame nearest each step of a `hz` control loop over the episode (the first at frame 0)."""
        steps = np.round(np.arange(0, len(self) * hz / self.fps) * self.fps / hz).astype(int)
        return np.minimum(steps, len(self) - 1)

    def hand(self, side: str = "right") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One hand in the world: wrist poses (N, 4, 4), fingertips (N, 5, 3), and which frames track the wrist and
        all five tips (N,) bool."""
        if side not in layout.SIDES:
            raise ValueError(f"unknown side {side!r}; valid: {list(layout.SIDES)}")
        wrist = self.transform(layout.wrist(side))
        tips = np.stack([self.transform(layout.fingertip(side, f))[:, :3, 3] for f in layout.FINGERS], 1)
        k = layout.SIDES.index(side) * 6
        return wrist, tips, self.masks()[:, k : k + 6].all(-1)

    def masks(self, threshold: float = 0.5) -> np.ndarray:
        """(N, 12) bool: which keypoints are usable (layout.keypoint_masks)."""
        w = np.stack([self.confidence(layout.wrist(s)) for s in layout.SIDES], 1)
        t = np.stack([np.stack([self.confidence(layout.fingertip(s, f)) for f in layout.FINGERS], 1)
                      for s in layout.SIDES], 1)
        return layout.keypoint_masks(w, t, threshold)

    # ---- video ------------------------------------------------------------------------------------------------------
    def _reader(self):
        if not self.video_path.is_file():
            raise DexError(f"{self.video_path}: no video for episode {self.path}",
                           hint="the stand-in writes videos only when run with --video")
        import imageio.v2 as iio

        return iio.get_reader(self.video_path, format="ffmpeg")

    def frame(self, i: int) -> np.ndarray:
        """Video frame i as (H, W, 3) uint8."""
        return self.frames([i])[0]

    def frames(self, indices: Sequence[int]) -> np.ndarray:
        """(len(indices), H, W, 3) uint8, decoded in one pass over the video up to the last index asked for."""
        want = [int(i) for i in indices]
        bad = [i for i in want if not 0 <= i < self._len]
        if bad:
            raise DexError(f"{self.video_path}: frame(s) {bad} out of range for {self._len} frames")
        if not want:
            return np.zeros((0, 0, 0, 3), np.uint8)
        got: dict[int, np.ndarray] = {}
        reader = self._reader()
        try:
            for k, img in enumerate(reader):
                if k in want:
                    got[k] = np.asarray(img, dtype=np.uint8)
                if k >= max(want):
                    break
        finally:
            reader.close()
        missing = sorted(set(want) - set(got))
        if missing:
            raise DexError(f"{self.video_path}: the video ends before frame {missing[0]} ({self._len} pose frames)")
        return np.stack([got[i] for i in want])


def episodes(root: str | Path, task: str = "*") -> list[Path]:
    """The `<task>/<i>.hdf5` files under `root` (of one task, or all), by task then episode number (temporary files
    left out)."""
    root = Path(root)
    if not root.is_dir():
        raise DexError(f"{root}: no such dataset folder", hint="give the folder that holds <task>/<i>.hdf5")
    found = [p for p in root.glob(f"{task}/*.hdf5") if p.stem.isdigit()]
    return sorted(found, key=lambda p: (p.parent.name, int(p.stem)))


@dataclass(frozen=True)
class Window:
    """One trajectory-prediction sample at step `t`: the last `h` steps (t included) and the next `T`, all in the
    camera frame of step t, with their keypoint masks."""

    t: int
    history: np.ndarray  # (h, 48)
    future: np.ndarray  # (T, 48)
    history_mask: np.ndarray  # (h, 12)
    future_mask: np.ndarray  # (T, 12)


def windows(episode: EgoDexEpisode, history: int = 1, horizon: int = HORIZON_1S, stride: int = 1,
            threshold: float = 0.5) -> Iterator[Window]:
    """Every window of `history` past steps (the current one included) and a `horizon`-step future chunk, current
    steps `stride` apart, each whole inside the episode.

    The chunk is EgoDex's relative trajectory: every keypoint, past and future, re-expressed in the camera frame of the
    window's current step, not in the camera frame of its own step. The prediction is then where the hands go as seen
    from where the head is now, so the head's own motion during the chunk is part of what is predicted, and history
    and future form one continuous path."""
    if history < 1 or horizon < 1 or stride < 1:
        raise DexError(f"windows: history, horizon and stride must be >= 1, got {history}, {horizon}, {stride}")
    masks = episode.masks(threshold)
    for t in range(history - 1, len(episode) - horizon, stride):
        past, future = np.arange(t - history + 1, t + 1), np.arange(t + 1, t + 1 + horizon)
        a = episode.actions_in_frame_of(t, np.concatenate([past, future]))
        yield Window(t, a[:history], a[history:], masks[past], masks[future])
