"""Results on disk. Every file the suite writes goes through `atomic_write` (temp file + rename: a reader, or a run
killed midway, never sees half a file) or is an append-only log written a whole line at a time (`append_jsonl`, whose
reader `read_jsonl` skips a torn last line). Every report and benchmark JSON carries the code version and settings that
made it (`provenance`)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]


def git_commit(root: Path = ROOT) -> str | None:
    """The checked-out commit, with `+dirty` when tracked files differ from it; None outside a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                               text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def to_jsonable(x: Any) -> Any:
    """Dataclasses, paths, tuples and numpy scalars as plain JSON values."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: to_jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 1) == 0:
        return x.item()
    return x


def provenance(settings: Any = None) -> dict:
    """What made a result: the commit, when, on what machine, and the full settings."""
    out = dict(commit=git_commit(), time=time.strftime("%Y-%m-%dT%H:%M:%S%z"), host=platform.node(),
               cpu=platform.processor() or platform.machine(), cpus=os.cpu_count())
    if settings is not None:
        out["settings"] = to_jsonable(settings)
    return out


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path next to `path` (same suffix, so writers infer the format) that replaces `path` when the
    block ends without an error; on an error the temporary file goes and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_text(path: str | Path, text: str) -> Path:
    with atomic_write(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def save_json(path: str | Path, obj: Any) -> Path:
    """Writes `obj` as JSON to `path` atomically."""
    return save_text(path, json.dumps(to_jsonable(obj), indent=1))


def append_jsonl(path: str | Path, obj: Any) -> None:
    """Appends one JSON line in a single write, flushed: a kill leaves whole lines and at most one torn last line."""
    with Path(path).open("a") as fh:
        fh.write(json.dumps(to_jsonable(obj)) + "\n")
        fh.flush()


def read_jsonl(path: str | Path) -> list:
    """The lines of an append-only JSON log; a torn last line (a writer killed mid-line) is skipped with a warning."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    out = []
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if k < len(lines) - 1:
                raise
            print(f"[warning] {path}: skipping a torn last line (a run was interrupted while writing it)")
    return out
