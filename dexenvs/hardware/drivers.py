"""What a device driver is to `HardwareEnv`: joint drivers (hands, arms), pose sources (motion capture, tag trackers)
and cameras, each reading timestamped measurements and, for joint drivers, taking joint position targets.

Everything is in the sim's units and names: joint positions in rad (or m for prismatic joints) under the sim robot's
joint names, poses in the sim's world frame (xyz + wxyz quaternion). A driver converts to its device's units itself
(the Inspire hand's 0-1000 angles through its calibration file). Timestamps are `time.monotonic()` seconds of when the
measurement was taken, so the watchdog can tell a stale sensor from a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


class DeviceError(RuntimeError):
    """A device is disconnected, does not answer, or reports a fault; the message says which and what it said."""


@dataclass
class JointReading:
    qpos: np.ndarray
    """(n,) positions in the driver's `joint_names` order, sim units"""
    stamp: float
    """time.monotonic() when measured"""
    force: np.ndarray | None = None
    """(n,) the force each actuator reports, in the driver's `force_unit`; None if it has no force sensing"""
    faults: tuple[str, ...] = ()
    """faults the device reports now (e.g. "index: over-current"); any fault makes the safety layer stop"""


@dataclass
class PoseReading:
    pose: np.ndarray
    """(7,) xyz + wxyz quaternion in the sim's world frame"""
    stamp: float


@dataclass
class ImageReading:
    image: np.ndarray
    """(H, W, 3) uint8"""
    stamp: float


@runtime_checkable
class JointDriver(Protocol):
    """A device that moves some of the sim robot's joints: a hand's fingers, an arm that carries the wrist."""

    joint_names: tuple[str, ...]
    """the sim robot's names of the joints it moves, in the order of `read().qpos` and `send()`"""
    lower: np.ndarray
    upper: np.ndarray
    """(n,) the range the device itself can reach, sim units; the safety layer keeps targets inside it and inside
    the sim robot's limits"""
    force_unit: str

    def connect(self) -> None: ...

    def read(self) -> JointReading: ...

    def send(self, targets: np.ndarray) -> np.ndarray:
        """Command joint position targets (n,); returns the targets the device actually took (after its own
        quantization), which is what the safety layer checks and the dataset records."""
        ...

    def stop(self) -> None:
        """Safe stop: hold the current position with the least force the device allows, and take no more targets
        until `send` is called again after the safety layer's reset."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class PoseSource(Protocol):
    def read(self) -> PoseReading: ...

    def close(self) -> None: ...


@runtime_checkable
class Camera(Protocol):
    def read(self) -> ImageReading: ...

    def close(self) -> None: ...


@dataclass
class Devices:
    """The set of devices one `HardwareEnv` runs: joint drivers that together cover the sim robot's actuated joints,
    an object-pose source (needed when the task observes the object) and cameras by the sim's sensor names."""

    joints: list[JointDriver]
    object_pose: PoseSource | None = None
    cameras: dict[str, Camera] = field(default_factory=dict)

    def close(self) -> None:
        for d in [*self.joints, self.object_pose, *self.cameras.values()]:
            if d is not None:
                try:
                    d.close()
                except Exception:  # closing must reach every device even when one is already gone
                    pass
