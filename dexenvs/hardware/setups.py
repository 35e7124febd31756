"""Named hardware setups: the devices `HardwareEnv` runs for `--hardware loopback|inspire-serial|inspire-modbus`.

- `loopback`: the whole robot and the object in a second simulation (`dexenvs.hardware.loopback`).
- `inspire-serial` / `inspire-modbus`: an Inspire RH56 hand moves the fingers over its real protocol; the wrist and the
  object come from a loopback simulation, a bench setup for a hand on a desk until an arm driver joins it. With
  `emulate`, the hand is the protocol emulator (`dexenvs.hardware.inspire_emulator`) on a pseudo-terminal or a local
  Modbus server, so the whole path runs without a hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

from dexenvs.hardware.drivers import Devices
from dexenvs.hardware.loopback import LoopbackConfig, LoopbackRobot

HARDWARE = ("loopback", "inspire-serial", "inspire-modbus")
Hardware = Literal["loopback", "inspire-serial", "inspire-modbus"]


@dataclass
class InspireLink:
    port: str = "/dev/ttyUSB0"
    """serial device of the RS485 adapter (inspire-serial)"""
    hand_id: int = 1
    host: str = "192.168.11.210"
    """the hand's address (inspire-modbus)"""
    modbus_port: int = 6000
    emulate: bool = False
    """talk to the protocol emulator instead of a hand"""


@dataclass
class Setup:
    devices: Devices
    reset_hook: Callable
    robot: LoopbackRobot
    """the loopback simulation (the whole robot, or the wrist and object beside a real hand); its sim's success is
    ground truth a real setup does not have"""
    closers: list = field(default_factory=list)

    def close(self) -> None:
        for c in self.closers:
            c.close()


def make_setup(hardware: str, env_id: str, loopback: LoopbackConfig | None = None, link: InspireLink | None = None,
               **env_kwargs) -> Setup:
    if hardware not in HARDWARE:
        raise ValueError(f"unknown hardware {hardware!r}; valid: {list(HARDWARE)}")
    robot = LoopbackRobot(env_id, loopback, **env_kwargs)
    drivers = robot.drivers()
    closers: list = []
    if hardware != "loopback":
        sim_hand = next(d for d in drivers if d.label == "hand")
        hand = Mirrored(_inspire(hardware, link or InspireLink(), robot, closers), sim_hand)
        drivers = [d for d in drivers if d.label != "hand"] + [hand]
    return Setup(Devices(joints=drivers, object_pose=robot.pose_source()), robot.reset_hook, robot, closers)


class Mirrored:
    """A real joint driver whose measured positions also drive the loopback's copy of those joints, so the simulated
    object meets the fingers where the real ones are (hardware in the loop)."""

    def __init__(self, driver, sim_joints):
        self.driver = driver
        self.sim = type(sim_joints)(sim_joints.robot, tuple(driver.joint_names), "hand")  # in the driver's order

    def __getattr__(self, name):
        return getattr(self.driver, name)

    def read(self):
        r = self.driver.read()
        self.sim.send(r.qpos)
        return r


def _inspire(hardware: str, link: InspireLink, robot: LoopbackRobot, closers: list):
    from dexenvs.hardware import inspire, inspire_emulator

    side = robot.env.agent.hand_side
    if hardware == "inspire-serial":
        port = link.port
        if link.emulate:
            emu = inspire_emulator.SerialHandEmulator(inspire_emulator.HandModel(), hand_id=link.hand_id)
            closers.append(emu)
            port = emu.port
        return inspire.InspireSerialDriver(port=port, hand_id=link.hand_id, side=side)
    host, port = link.host, link.modbus_port
    if link.emulate:
        emu = inspire_emulator.ModbusHandEmulator(inspire_emulator.HandModel(), host="127.0.0.1", port=0)
        closers.append(emu)
        host, port = "127.0.0.1", emu.port
    return inspire.InspireModbusDriver(host=host, port=port, side=side)
