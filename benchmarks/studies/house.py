"""How the house is built, at one or more commits side by side: the largest modules and functions (lines), the
modules and functions over a size, and the imports that run up a floor or in a circle.

    python -m benchmarks.studies.house 7b3fcdd HEAD

Reads each commit's tree with git (the working tree is not touched). Writes benchmarks/results/house.json.
"""

from __future__ import annotations

import ast
import subprocess
from dataclasses import dataclass
from pathlib import Path

import tyro

from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, NewPath, run_cli

FLOORS = ("assets", "dexenvs", "agents", "generators", "benchmarks")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Args(ResultArgs):
    commits: tyro.conf.Positional[tuple[str, ...]] = ("HEAD",)
    top: Count = 8
    out: NewPath = RESULTS / "house.json"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def measure(commit: str, top: int) -> dict:
    sha = _git("rev-parse", "--short", commit).strip()
    files = [f for f in _git("ls-tree", "-r", "--name-only", commit).splitlines()
             if f.endswith(".py") and f.split("/")[0] in FLOORS]
    sizes, funcs, upward = {}, [], []
    for f in files:
        src = _git("show", f"{commit}:{f}")
        sizes[f] = src.count("\n")
        tree = ast.parse(src)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                funcs.append((f"{f}:{node.name}", node.end_lineno - node.lineno + 1))
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for n in names:
                    top_level = n.split(".")[0]
                    if top_level in FLOORS and FLOORS.index(top_level) > FLOORS.index(f.split("/")[0]):
                        upward.append(f"{f} -> {n}")
    funcs.sort(key=lambda x: -x[1])
    return dict(commit=sha, python_files=len(files), python_lines=sum(sizes.values()),
                largest_files=sorted(sizes.items(), key=lambda x: -x[1])[:top], largest_functions=funcs[:top],
                files_over_600=sum(n > 600 for n in sizes.values()), functions_over_80=sum(n > 80 for _, n in funcs),
                upward_imports=sorted(set(upward)))


def main(args: Args) -> dict:
    rows = {c: measure(c, args.top) for c in args.commits}
    for c, r in rows.items():
        print(f"\n## {c} ({r['commit']}): {r['python_files']} files, {r['python_lines']} lines; "
              f"{r['files_over_600']} files over 600 lines, {r['functions_over_80']} functions over 80 lines")
        print("largest files:     " + ", ".join(f"{f} {n}" for f, n in r["largest_files"]))
        print("largest functions: " + ", ".join(f"{f} {n}" for f, n in r["largest_functions"]))
        print(f"imports up a floor: {len(r['upward_imports'])}" + "".join(f"\n  {u}" for u in r["upward_imports"]))
    save_result(args.out, dict(commits=rows), args)
    return rows


if __name__ == "__main__":
    run_cli(main, Args)
