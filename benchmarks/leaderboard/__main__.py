"""`python -m benchmarks.leaderboard run ...` / `python -m benchmarks.leaderboard show ...` (see benchmarks.leaderboard)."""

import sys

from dexenvs.cli import run_cli

COMMANDS = ("run", "show")

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        given = sys.argv[1] if len(sys.argv) > 1 else "(none)"
        print(f"benchmarks.leaderboard: error: command {given}: valid commands: {list(COMMANDS)} "
              f"(python -m benchmarks.leaderboard run --help)", file=sys.stderr)
        raise SystemExit(2)
    if sys.argv[1] == "run":
        from benchmarks.leaderboard.run import Args, main
    else:
        from benchmarks.leaderboard.page import Args, main
    run_cli(main, Args, sys.argv[2:], prog=f"benchmarks.leaderboard {sys.argv[1]}")
