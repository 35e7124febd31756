"""The leaderboard on a tiny config: an entry is written with its provenance, runs the same twice, is refused once the
scenario list changes under it, and renders to a page that a real headless browser shows with every entry."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from benchmarks.leaderboard import page, run, scenarios
from dexenvs.cli import DexError, UsageError

TINY = dict(tasks=("grasp",), splits=("test_oep",), seeds=1, episodes=2, workers=1, progress=False)


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("board")
    run.main(run.Args(agent="expert", entries=root / "entries", **TINY))
    run.main(run.Args(agent="benchmarks.leaderboard.example_agent:make", entries=root / "entries", videos=False, **TINY))
    return root


def test_an_entry_records_outcomes_provenance_and_is_reproducible(board, tmp_path):
    e = json.loads((board / "entries" / "expert.json").read_text())
    cell = e["cells"]["grasp/test_oep"]
    assert cell["episodes"] == 2 and len(cell["results"]) == 2 and 0 <= cell["interval"][0] <= cell["success"]
    assert cell["scenario_hash"] == scenarios.load()["hashes"]["grasp"]["test_oep"]
    lst = scenarios.load()["lists"]["grasp"]["test_oep"]
    assert [r["scenario"] for r in cell["results"]] == lst[:2]
    assert e["provenance"]["commit"] and len(e["agent_hash"]) == 16
    assert (board / cell["video"]).stat().st_size > 1000
    again = run.main(run.Args(agent="expert", entries=tmp_path, videos=False, **TINY))
    assert again["cells"]["grasp/test_oep"]["results"] == cell["results"]
    with pytest.raises(UsageError, match="exists"):
        run.Args(agent="expert", entries=board / "entries", **TINY).check()
    with pytest.raises(UsageError, match="no such checkpoint"):
        run.Args(agent="missing.pt").check()


def test_an_entry_made_on_other_scenario_lists_is_refused(board, tmp_path):
    data = json.loads(scenarios.FILE.read_text())
    data["lists"]["grasp"]["test_oep"][0] = data["lists"]["grasp"]["test_oep"][1]
    changed = tmp_path / "scenarios.json"
    changed.write_text(json.dumps(data))
    with pytest.raises(DexError, match=r"\.json was made on other scenario lists .*\(grasp/test_oep\): not comparable"):
        page.main(page.Args(entries=board / "entries", scenarios=changed, out=tmp_path))
    # both entries were made on the old list: left out, nothing to show
    with pytest.raises(DexError, match="no entries"):
        page.main(page.Args(entries=board / "entries", scenarios=changed, out=tmp_path, drop_stale=True))


def test_the_page_renders_in_a_headless_browser_with_every_entry(board):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert browser, "no headless browser: ./setup.sh installs Debian's chromium"
    shown = page.main(page.Args(entries=board / "entries", out=board))
    assert sorted(shown["entries"]) == ["example_agent-make", "expert"]
    md = (board / "LEADERBOARD.md").read_text()
    assert "| expert |" in md and "(n=2)" in md
    url = (board / "index.html").as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    rows = dom.split('<table id="leaderboard">')[1].split("</table>")[0].count("<tr>")
    assert rows == 1 + 2 and "example_agent-make" in dom  # header + one row per entry
    shot = board / "page.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,900", url], capture_output=True,
                   timeout=120)
    import imageio.v3 as iio

    img = iio.imread(shot)
    assert img.shape[0] == 900 and img.std() > 10  # not a blank page
