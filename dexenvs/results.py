"""Results on disk: every report and benchmark JSON is written atomically through `save_json` and carries the code
version and settings that made it (`provenance`)."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

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


def save_json(path: str | Path, obj: Any) -> Path:
    """Writes `obj` as JSON to `path` atomically (temp file + rename): a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(to_jsonable(obj), indent=1))
    os.replace(tmp, path)
    return path
