"""`python -m generators.flywheel --task handover --iters 3 [--quick] [--variant ...]`: see generators.flywheel."""

from dexenvs.cli import run_cli
from generators.flywheel.config import FlywheelConfig as Args
from generators.flywheel.loop import run_flywheel as main

if __name__ == "__main__":
    run_cli(main, Args)
