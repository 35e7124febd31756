"""How many command-line options have a checked range: `python -m benchmarks.studies.cli_options`.

Finds every command (a module whose `__main__` block runs `run_cli(main, Args)`) and sorts each option into
`checked` (a declared range, path existence or output check), `choice` (a fixed set of values or a flag, which the
parser checks) and `free` (a string or number with no bound: names, devices, scenario lists checked in `check()`)."""

from __future__ import annotations

import importlib
import re
from collections import Counter
from pathlib import Path

from dexenvs.cli import options

ROOT = Path(__file__).resolve().parents[2]


def commands() -> list[str]:
    found = []
    for pkg in ("dexenvs", "agents", "generators", "benchmarks"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if re.search(r"^    run_cli\(main, Args\)$", path.read_text(), re.M):
                mod = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                found.append(mod[: -len(".__main__")] if mod.endswith(".__main__") else mod)
    return found


def main() -> dict:
    rows, total = {}, Counter()
    for name in commands():
        mod = importlib.import_module(name if not (ROOT / name.replace(".", "/") / "__main__.py").exists()
                                      else name + ".__main__")
        kinds = Counter(kind for _, kind in options(mod.Args))
        rows[name] = dict(kinds, total=sum(kinds.values()))
        total.update(kinds)
    print(f"{'command':40s} {'checked':>8s} {'choice':>7s} {'free':>5s} {'total':>6s}")
    for name, r in rows.items():
        print(f"{name:40s} {r.get('checked', 0):8d} {r.get('choice', 0):7d} {r.get('free', 0):5d} {r['total']:6d}")
    n = sum(total.values())
    print(f"{'all ' + str(len(rows)) + ' commands':40s} {total['checked']:8d} {total['choice']:7d} {total['free']:5d} "
          f"{n:6d}")
    return dict(commands=rows, total=dict(total, options=n))


if __name__ == "__main__":
    main()
