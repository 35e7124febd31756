"""`python -m generators.flywheel --task handover --iters 3 [--quick] [--variant ...]`: see generators.flywheel."""

import tyro

from generators.flywheel.config import FlywheelConfig
from generators.flywheel.loop import run_flywheel

if __name__ == "__main__":
    run_flywheel(tyro.cli(FlywheelConfig))
