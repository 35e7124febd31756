"""`python -m benchmarks.leaderboard show`: the leaderboard as markdown (`LEADERBOARD.md`) and as one static HTML page
(`index.html`: the table, a plot embedded in the page, a rollout video per cell beside it; no server needed).

Entries are sorted by their mean success over the cells they played. An entry made on scenario lists other than the
current `scenarios.json` is refused (its numbers are not comparable); `--drop-stale` leaves such entries out instead.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.leaderboard import scenarios as lists
from dexenvs.cli import DexError, ExistingPath, run_cli
from dexenvs.results import atomic_write
from dexenvs.scenarios import SPLITS

ROOT = Path(__file__).parent


@dataclass
class Args:
    entries: Path = ROOT / "entries"
    scenarios: ExistingPath = lists.FILE
    out: Path = ROOT
    """folder for LEADERBOARD.md and index.html"""
    drop_stale: bool = False
    """leave out entries made on other scenario lists instead of refusing"""


def load_entries(entries: Path, scenarios: Path, drop_stale: bool = False) -> list[dict]:
    current = lists.load(scenarios)
    out = []
    for p in sorted(entries.glob("*.json")):
        e = json.loads(p.read_text())
        stale = [k for k, c in e["cells"].items()
                 if current["hashes"].get(c["task"], {}).get(c["split"]) != c["scenario_hash"]]
        if stale:
            if drop_stale:
                print(f"[leaderboard] left out {p.name}: made on other scenario lists ({', '.join(stale)})")
                continue
            raise DexError(f"{p} was made on other scenario lists than {scenarios} ({', '.join(stale)}): not "
                           f"comparable", hint="rerun the entry, or --drop-stale to leave it out")
        e["mean"] = float(np.mean([c["success"] for c in e["cells"].values()])) if e["cells"] else 0.0
        out.append(e)
    return sorted(out, key=lambda e: -e["mean"])


def columns(entries: list[dict]) -> list[tuple[str, str]]:
    keys = {(c["task"], c["split"]) for e in entries for c in e["cells"].values()}
    return sorted(keys, key=lambda k: (k[0], SPLITS.index(k[1])))


def cell_text(c: dict | None) -> str:
    if c is None:
        return "-"
    lo, hi = c["interval"]
    return f"{c['success']:.0%} [{lo:.0%}, {hi:.0%}] (n={c['episodes']})"


def markdown(entries: list[dict]) -> str:
    cols = columns(entries)
    head = "| entry | mean | " + " | ".join(f"{t} {s}" for t, s in cols) + " |"
    rows = [head, "|" + "---|" * (len(cols) + 2)]
    for e in entries:
        cells = [cell_text(e["cells"].get(f"{t}/{s}")) for t, s in cols]
        rows.append(f"| {e['name']} | {e['mean']:.0%} ({len(e['cells'])} cells) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot_png(entries: list[dict]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = columns(entries)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(cols) + 2), 3.6), dpi=100)
    width = 0.8 / max(1, len(entries))
    for k, e in enumerate(entries):
        xs, ys, err = [], [], [[], []]
        for j, (t, s) in enumerate(cols):
            c = e["cells"].get(f"{t}/{s}")
            if c is None:
                continue
            xs.append(j + k * width)
            ys.append(c["success"])
            err[0].append(c["success"] - c["interval"][0])
            err[1].append(c["interval"][1] - c["success"])
        ax.bar(xs, ys, width, yerr=err, capsize=2, label=e["name"])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cols))], [f"{t}\n{s}" for t, s in cols], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success (95% interval)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def page(entries: list[dict], version: str) -> str:
    cols = columns(entries)
    img = base64.b64encode(plot_png(entries)).decode()
    head = "".join(f"<th>{html.escape(t)}<br>{html.escape(s)}</th>" for t, s in cols)
    body = []
    for e in entries:
        tds = []
        for t, s in cols:
            c = e["cells"].get(f"{t}/{s}")
            video = (f'<br><video src="{html.escape(c["video"])}" width="160" muted loop controls></video>'
                     if c and c.get("video") else "")
            tds.append(f"<td>{html.escape(cell_text(c))}{video}</td>")
        body.append(f"<tr><td class=name>{html.escape(e['name'])}</td><td>{e['mean']:.0%}</td>{''.join(tds)}</tr>")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>dexsuite leaderboard</title>
<style>body{{font-family:sans-serif;margin:2em;background:#fff;color:#111}} table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:4px 8px;text-align:center;font-size:13px}} td.name{{text-align:left;font-weight:bold}}
th{{background:#e8eef7}}</style></head>
<body><h1>dexsuite leaderboard</h1>
<p>Success per task and split with its 95% interval (Wilson) and episode count, on the fixed scenario lists
{html.escape(version)}; entries sorted by their mean over the cells they played.</p>
<table id="leaderboard"><thead><tr><th>entry</th><th>mean</th>{head}</tr></thead>
<tbody>{''.join(body)}</tbody></table>
<h2>Success by cell</h2><img alt="success per cell" src="data:image/png;base64,{img}">
</body></html>
"""


def show(args: Args) -> dict:
    entries = load_entries(args.entries, args.scenarios, args.drop_stale)
    if not entries:
        raise DexError(f"no entries in {args.entries}", hint="python -m benchmarks.leaderboard run --agent expert")
    version = lists.load(args.scenarios)["version"]
    md = f"# Leaderboard (scenario lists {version})\n\n" + markdown(entries) + "\n"
    with atomic_write(args.out / "LEADERBOARD.md") as tmp:
        tmp.write_text(md)
    with atomic_write(args.out / "index.html") as tmp:
        tmp.write_text(page(entries, version))
    print(markdown(entries))
    print(f"[leaderboard] wrote {args.out / 'LEADERBOARD.md'} and {args.out / 'index.html'}")
    return dict(entries=[e["name"] for e in entries])


main = show

if __name__ == "__main__":
    run_cli(main, Args)
