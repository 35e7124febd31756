"""The leaderboard: every task x split evaluated on fixed, versioned scenario lists with fixed seeds, one result file
per entry, and a page that compares the entries.

- `python -m benchmarks.leaderboard run --agent SPEC [--tasks ...] [--splits ...]` (`run.py`): SPEC is a checkpoint
  `agents.evaluate` takes (`--residual` adds a residual), `expert` (each task's scripted expert), or `module:factory`
  for any policy with `reset(seed)` / `act(obs)` (`agents.py`; an example in `example_agent.py`);
- `python -m benchmarks.leaderboard show` (`page.py`): a markdown table and one static HTML page with a plot and a
  rollout video per cell;
- `scenarios.json` (`scenarios.py`): the scenario lists, versioned; an entry made on other lists is refused for
  comparison.
"""
