"""The Inspire RH56 hand (RH56DFX / RH56DFTP): its register protocol over RS485 serial and Modbus TCP, two drivers that
implement `JointDriver`, and the calibration between the hand's 0-1000 angles and the sim's joint radians.

Protocol facts (the vendor's manuals):

- Six actuators. Register channel order m = 0..5: little, ring, middle, index, thumb bend, thumb rotation.
- Registers (byte addresses on serial, register addresses on Modbus): HAND_ID 1000, CLEAR_ERROR 1004, ANGLE_SET 1486
  (6 x int16 little-endian), FORCE_SET 1498 (6 x int16), SPEED_SET 1522 (6 x int16), ANGLE_ACT 1546 (6 x int16),
  FORCE_ACT 1582 (6 x int16, signed), ERROR 1606, STATUS 1612 and TEMP 1618 (6 x uint8 each).
- Angles 0..1000 (1000 open, 0 closed); speed and force 0..1000; -1 written to ANGLE_SET leaves that finger as it is.
- ERROR bits per finger: 0 locked rotor, 1 over-temperature, 2 over-current, 3 motor fault, 4 communication error.
  STATUS per finger: 0 releasing, 1 grasping, 2 position reached, 3 force reached, 5 current protection stop,
  6 locked-rotor stop, 7 fault stop.
- Serial (RS485, 115200 8N1). Request `EB 90 ID LEN CMD ADDR_L ADDR_H DATA... SUM`; CMD 0x11 reads (DATA is one byte,
  the number of bytes to read; LEN = 4), CMD 0x12 writes (LEN = len(DATA) + 3). SUM = (sum of the bytes from ID through
  the last DATA byte) & 0xFF. The reply has the header `90 EB` and otherwise the same layout: the bytes read, or one
  byte 0x01 for a successful write.
- Modbus TCP (port 6000, unit 1): the same addresses as holding registers, one register per finger for the int16
  blocks; the uint8 blocks take three registers, two fingers each, the lower finger in the low byte.

The angle-to-radian map is not published by Inspire. It is derived from the joint limits of the URDF ManiSkill ships
for the hand (angle 1000 = the upper limit, 0 rad, open; angle 0 = the lower limit, closed; linear in between) and
kept in a calibration file per side (`calibration/inspire_rh56dfx_<side>.json`). `write_calibration` (or
`python -m dexenvs.hardware.inspire --write-calibration right|left`) regenerates it; edit it after measuring a hand.

Choices this module makes:

- Drivers use the sim's action order (thumb rotation, thumb bend, index, middle, ring, little), which is the register
  order reversed; the calibration file lists channels in register order.
- Retries: a request that gets no reply within `timeout` is sent once more; a second silence, a bad checksum, a wrong
  header, a Modbus exception or a lost link raise `DeviceError` at once.
- `stop()` holds each finger where it is (ANGLE_SET = ANGLE_ACT), so no motor keeps pushing toward an older target.
  The driver does not latch the stop: as `JointDriver` specifies, the safety layer is what keeps targets from it, and
  the next `send` (after the safety layer's reset) moves the hand again. `stopped` says whether a stop is in force.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np

from dexenvs.hardware.drivers import DeviceError, JointReading

try:
    from termios import error as _TermiosError  # pyserial lets it through when a pseudo-terminal vanishes
except ImportError:  # not POSIX
    class _TermiosError(Exception):
        pass

N_FINGERS = 6
FINGERS = ("little", "ring", "middle", "index", "thumb bend", "thumb rotation")
"""finger of each register channel m = 0..5"""
SIM_JOINTS = ("pinky_MCP", "ring_MCP", "middle_MCP", "index_MCP", "thumb_CMC_pitch", "thumb_CMC_yaw")
"""the sim joint (`<side>_hand_<name>_joint`) each register channel drives"""
DRIVER_ORDER = (5, 4, 3, 2, 1, 0)
"""register channel of each driver joint: the sim's action order thumb yaw, thumb pitch, index, middle, ring, pinky"""
ANGLE_OPEN, ANGLE_CLOSED = 1000, 0
UNIT_MAX = 1000
KEEP = -1
"""ANGLE_SET value that leaves a finger as it is"""
SIDES = ("right", "left")

ERROR_BITS = {0: "locked rotor", 1: "over-temperature", 2: "over-current", 3: "motor fault", 4: "communication error"}
STATUS = {0: "releasing", 1: "grasping", 2: "position reached", 3: "force reached", 5: "current protection stop",
          6: "locked-rotor stop", 7: "fault stop"}

CALIBRATION_DIR = Path(__file__).parent / "calibration"
URDF_IN_PACKAGE = "assets/robots/inspire_hand/RH56DFX-2LR/urdf/inspire_hand_{side}_floating.urdf"
"""the URDF the calibration derives from, relative to the mani_skill package"""


# ---------------------------------------------------------------------------------------------------------- registers
@dataclass(frozen=True)
class Register:
    """A block of per-finger values at one address, and how it travels on each transport."""

    name: str
    address: int
    count: int
    width: int
    """bytes per value on serial: 2 (int16 little-endian) or 1 (uint8)"""
    signed: bool = False
    writable: bool = False
    valid: tuple[int, int] | None = None
    """the range a written value must lie in; the hand ignores values outside it"""
    keep: int | None = None
    """a value outside `valid` that a write may still carry, meaning "leave this one as it is" """

    @property
    def nbytes(self) -> int:
        return self.count * self.width

    @property
    def words(self) -> int:
        """Modbus registers the block occupies: one per int16, one per two uint8."""
        return self.count if self.width == 2 else (self.count + 1) // 2

    def pack(self, values: Sequence[int]) -> bytes:
        """Serial payload of `values`."""
        return b"".join(int(v).to_bytes(self.width, "little", signed=self.signed) for v in values)

    def unpack(self, data: bytes) -> list[int]:
        w = self.width
        return [int.from_bytes(data[i:i + w], "little", signed=self.signed) for i in range(0, len(data), w)]

    def to_words(self, values: Sequence[int]) -> list[int]:
        """Modbus registers holding `values` (uint16 each; two uint8 values share one, the first in the low byte)."""
        if self.width == 2:
            return [int(v) & 0xFFFF for v in values]
        padded = [int(v) & 0xFF for v in values] + [0] * (len(values) % 2)
        return [padded[i] | padded[i + 1] << 8 for i in range(0, len(padded), 2)]

    def from_words(self, words: Sequence[int], count: int | None = None) -> list[int]:
        """The first `count` values (default: as many as the words hold) of Modbus registers."""
        if self.width == 2:
            values = [w - 0x10000 if self.signed and w & 0x8000 else w for w in words]
        else:
            values = [b for w in words for b in (w & 0xFF, w >> 8 & 0xFF)]
        return values[:len(values) if count is None else count]


HAND_ID = Register("HAND_ID", 1000, 1, 1)
CLEAR_ERROR = Register("CLEAR_ERROR", 1004, 1, 1, writable=True, valid=(0, 1))
ANGLE_SET = Register("ANGLE_SET", 1486, N_FINGERS, 2, signed=True, writable=True, valid=(0, UNIT_MAX), keep=KEEP)
FORCE_SET = Register("FORCE_SET", 1498, N_FINGERS, 2, signed=True, writable=True, valid=(0, UNIT_MAX))
SPEED_SET = Register("SPEED_SET", 1522, N_FINGERS, 2, signed=True, writable=True, valid=(0, UNIT_MAX))
ANGLE_ACT = Register("ANGLE_ACT", 1546, N_FINGERS, 2, signed=True)
FORCE_ACT = Register("FORCE_ACT", 1582, N_FINGERS, 2, signed=True)
ERROR = Register("ERROR", 1606, N_FINGERS, 1)
STATUS_REG = Register("STATUS", 1612, N_FINGERS, 1)
TEMP = Register("TEMP", 1618, N_FINGERS, 1)
REGISTERS = {r.name: r for r in (HAND_ID, CLEAR_ERROR, ANGLE_SET, FORCE_SET, SPEED_SET, ANGLE_ACT, FORCE_ACT, ERROR,
                                 STATUS_REG, TEMP)}


def describe_errors(bits: int) -> list[str]:
    """The faults an ERROR byte reports, by name."""
    return [ERROR_BITS.get(b, f"error bit {b}") for b in range(8) if bits >> b & 1]


# ------------------------------------------------------------------------------------------------------ serial frames
REQUEST_HEADER = b"\xeb\x90"
REPLY_HEADER = b"\x90\xeb"
CMD_READ, CMD_WRITE = 0x11, 0x12
WRITE_OK = 0x01


class FrameError(ValueError):
    """Bytes that are not a well-formed frame; the message says what is wrong."""


@dataclass(frozen=True)
class Frame:
    """One serial frame: a request (header EB 90) or a reply (90 EB). `data` is what follows the address: the byte
    count of a read request, the values of a write request or a read reply, the status byte of a write reply."""

    hand_id: int
    cmd: int
    address: int
    data: bytes
    reply: bool = False


def checksum(body: bytes) -> int:
    """The low byte of the sum of the bytes from ID through the last data byte."""
    return sum(body) & 0xFF


def encode_frame(frame: Frame) -> bytes:
    body = bytes([frame.hand_id, len(frame.data) + 3, frame.cmd]) + frame.address.to_bytes(2, "little") + frame.data
    return (REPLY_HEADER if frame.reply else REQUEST_HEADER) + body + bytes([checksum(body)])


def decode_frame(raw: bytes, reply: bool) -> Frame:
    """The frame in `raw`, which must be exactly one frame; raises FrameError on a wrong header, length or checksum."""
    header = REPLY_HEADER if reply else REQUEST_HEADER
    if raw[:2] != header:
        raise FrameError(f"wrong header {raw[:2].hex(' ')} (expected {header.hex(' ')})")
    if len(raw) < 8:
        raise FrameError(f"frame of {len(raw)} bytes is too short")
    if len(raw) != raw[3] + 5:
        raise FrameError(f"length byte says {raw[3] + 5} bytes, frame has {len(raw)}")
    body, got = raw[2:-1], raw[-1]
    if checksum(body) != got:
        raise FrameError(f"bad checksum 0x{got:02x} (computed 0x{checksum(body):02x})")
    return Frame(hand_id=body[0], cmd=body[2], address=int.from_bytes(body[3:5], "little"), data=bytes(body[5:]),
                 reply=reply)


def read_request(hand_id: int, reg: Register) -> Frame:
    return Frame(hand_id, CMD_READ, reg.address, bytes([reg.nbytes]))


def write_request(hand_id: int, reg: Register, values: Sequence[int]) -> Frame:
    return Frame(hand_id, CMD_WRITE, reg.address, reg.pack(values))


# -------------------------------------------------------------------------------------------------------- calibration
class CalibrationError(ValueError):
    """A calibration file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Channel:
    """One actuator's linear map: angle `units_open` is `rad_open`, `units_closed` is `rad_closed`."""

    register: int
    finger: str
    joint: str
    units_open: int
    units_closed: int
    rad_open: float
    rad_closed: float


_CHANNEL_KEYS = {"register": int, "finger": str, "joint": str, "units_open": int, "units_closed": int,
                 "rad_open": float, "rad_closed": float}


class Calibration:
    """The map between the hand's angles and the sim's radians, per register channel (`channels[m]` is channel m).

    Unit conversions clip to the range between each channel's `units_closed` and `units_open` (0..1000 as shipped), so
    every target maps to an angle the hand takes; `lower`/`upper` are that range in radians."""

    def __init__(self, side: str, channels: Sequence[Channel], source_urdf: str = "", path: Path | None = None):
        self.side, self.channels, self.source_urdf, self.path = side, tuple(channels), source_urdf, path
        c = self.channels
        self._u_open = np.array([ch.units_open for ch in c], np.float64)
        self._u_closed = np.array([ch.units_closed for ch in c], np.float64)
        self._r_open = np.array([ch.rad_open for ch in c], np.float64)
        self._r_closed = np.array([ch.rad_closed for ch in c], np.float64)
        self.units_lo = np.minimum(self._u_open, self._u_closed).astype(np.int64)
        self.units_hi = np.maximum(self._u_open, self._u_closed).astype(np.int64)
        ends = np.stack([self.to_rad(self.units_lo), self.to_rad(self.units_hi)])
        self.lower, self.upper = ends.min(axis=0), ends.max(axis=0)

    @property
    def joint_names(self) -> tuple[str, ...]:
        """sim joint of each register channel"""
        return tuple(ch.joint for ch in self.channels)

    def to_units(self, rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(angles rounded to int and clipped to each channel's range, which of them clipped), register order."""
        rad = np.asarray(rad, np.float64)
        u = np.rint(self._u_closed + (rad - self._r_closed) * (self._u_open - self._u_closed)
                    / (self._r_open - self._r_closed))
        clipped = (u < self.units_lo) | (u > self.units_hi)
        return np.clip(u, self.units_lo, self.units_hi).astype(np.int64), clipped

    def to_rad(self, units: np.ndarray) -> np.ndarray:
        u = np.asarray(units, np.float64)
        return self._r_closed + (self._r_open - self._r_closed) * (u - self._u_closed) / (self._u_open - self._u_closed)

    # ------------------------------------------------------------------------------------------------ files
    @classmethod
    def default_path(cls, side: str) -> Path:
        _check_side(side)
        return CALIBRATION_DIR / f"inspire_rh56dfx_{side}.json"

    @classmethod
    def default(cls, side: str) -> Calibration:
        """The calibration file shipped for `side`."""
        return cls.load(cls.default_path(side))

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except OSError as e:
            raise CalibrationError(f"calibration file {path}: cannot read it ({e.strerror or e})") from e
        except json.JSONDecodeError as e:
            raise CalibrationError(f"calibration file {path}: not valid JSON ({e})") from e
        try:
            return cls.from_dict(doc, path)
        except CalibrationError as e:
            raise CalibrationError(f"calibration file {path}: {e}") from None

    @classmethod
    def from_dict(cls, doc: object, path: Path | None = None) -> Calibration:
        """A checked calibration from the JSON document's dict; raises CalibrationError saying what is wrong."""
        if not isinstance(doc, dict):
            raise CalibrationError("the top level must be an object")
        side = doc.get("side")
        if side not in SIDES:
            raise CalibrationError(f"'side' must be one of {list(SIDES)}, not {side!r}")
        raw = doc.get("channels")
        if not isinstance(raw, list) or len(raw) != N_FINGERS:
            raise CalibrationError(f"'channels' must be a list of {N_FINGERS} channels")
        channels = sorted((_parse_channel(i, c, side) for i, c in enumerate(raw)), key=lambda c: c.register)
        if [c.register for c in channels] != list(range(N_FINGERS)):
            raise CalibrationError(f"'register' must name each of 0..{N_FINGERS - 1} once, "
                                   f"got {sorted(c.register for c in channels)}")
        source = doc.get("source_urdf", "")
        if not isinstance(source, str):
            raise CalibrationError("'source_urdf' must be a string")
        return cls(side, channels, source, path)


def _parse_channel(i: int, raw: object, side: str) -> Channel:
    if not isinstance(raw, dict):
        raise CalibrationError(f"channels[{i}] must be an object")
    values = {}
    for key, kind in _CHANNEL_KEYS.items():
        if key not in raw:
            raise CalibrationError(f"channels[{i}] lacks {key!r}")
        v = raw[key]
        ok = isinstance(v, (int, float)) and math.isfinite(v) if kind is float else isinstance(v, kind)
        if isinstance(v, bool) or not ok:
            raise CalibrationError(f"channels[{i}].{key} must be a {'number' if kind is float else kind.__name__}, "
                                   f"not {v!r}")
        values[key] = kind(v)
    ch = Channel(**values)
    for key in ("units_open", "units_closed"):
        if not 0 <= getattr(ch, key) <= UNIT_MAX:
            raise CalibrationError(f"channels[{i}].{key} must lie in 0..{UNIT_MAX}, not {getattr(ch, key)}")
    if ch.units_open == ch.units_closed or ch.rad_open == ch.rad_closed:
        raise CalibrationError(f"channels[{i}] ({ch.joint}): open and closed must differ in units and in rad")
    if not ch.joint.startswith(f"{side}_hand_"):
        raise CalibrationError(f"channels[{i}].joint {ch.joint!r} is not a joint of the {side} hand")
    return ch


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"side must be one of {list(SIDES)}, not {side!r}")


def urdf_path(side: str) -> Path:
    """The ManiSkill URDF of the `side` hand (found without importing ManiSkill)."""
    _check_side(side)
    spec = importlib.util.find_spec("mani_skill")
    if spec is None or not spec.submodule_search_locations:
        raise CalibrationError("the mani_skill package is not installed; its URDF is the calibration's source")
    return Path(list(spec.submodule_search_locations)[0]) / URDF_IN_PACKAGE.format(side=side)


def calibration_from_urdf(side: str) -> dict:
    """The calibration document for `side` derived from the URDF's joint limits: open = upper, closed = lower."""
    path = urdf_path(side)
    limits = {j.get("name"): j.find("limit") for j in ET.parse(path).getroot().iter("joint")}
    channels = []
    for m, (finger, joint) in enumerate(zip(FINGERS, SIM_JOINTS)):
        name = f"{side}_hand_{joint}_joint"
        limit = limits.get(name)
        if limit is None:
            raise CalibrationError(f"{path}: no joint {name!r} with a <limit>")
        channels.append(dict(register=m, finger=finger, joint=name, units_open=ANGLE_OPEN, units_closed=ANGLE_CLOSED,
                             rad_open=float(limit.get("upper")), rad_closed=float(limit.get("lower"))))
    return dict(hand="Inspire RH56DFX", side=side, source_urdf=URDF_IN_PACKAGE.format(side=side),
                derivation="linear between the URDF joint limits: angle 1000 (open) = upper limit, angle 0 (closed) "
                           "= lower limit; Inspire publishes no angle-to-radian map",
                channels=channels)


def write_calibration(side: str, path: str | Path | None = None) -> Path:
    """(Re)writes the calibration file for `side` from the URDF (default: the shipped file); returns its path."""
    path = Path(path) if path is not None else Calibration.default_path(side)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(calibration_from_urdf(side), indent=2) + "\n")
    return path


# ------------------------------------------------------------------------------------------------------------ drivers
class _NoReply(Exception):
    """A transport got no (complete) reply within its timeout; the shared layer retries once."""


T = TypeVar("T")


class InspireDriver:
    """What both transports share: the order and unit conversions, connect / read / send / stop, retries and error
    messages. A transport implements `_open`, `_close`, `_read_once` and `_write_once` on register blocks (values
    in register channel order)."""

    force_unit = "inspire force units (0-1000)"

    def __init__(self, device: str, side: str, calibration: Calibration | str | Path | None, force_limit: int,
                 speed: int, timeout: float):
        _check_side(side)
        for name, v in (("force_limit", force_limit), ("speed", speed)):
            if not 0 <= int(v) <= UNIT_MAX:
                raise ValueError(f"{name} must lie in 0..{UNIT_MAX}, not {v}")
        if calibration is None:
            calibration = Calibration.default(side)
        elif not isinstance(calibration, Calibration):
            calibration = Calibration.load(calibration)
        if calibration.side != side:
            raise ValueError(f"the calibration ({calibration.path}) is for the {calibration.side} hand, not the {side}")
        self.device, self.side, self.calibration = device, side, calibration
        self.force_limit, self.speed, self.timeout = int(force_limit), int(speed), float(timeout)
        order = list(DRIVER_ORDER)
        self._order = np.array(order)
        self.joint_names: tuple[str, ...] = tuple(calibration.joint_names[m] for m in order)
        self.lower: np.ndarray = calibration.lower[order].copy()
        self.upper: np.ndarray = calibration.upper[order].copy()
        self.stopped = False
        """True from `stop()` until the next `send()`"""
        self._connected = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------ transport hooks
    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _read_once(self, reg: Register) -> list[int]:
        raise NotImplementedError

    def _write_once(self, reg: Register, values: Sequence[int]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------------------ shared layer
    def error(self, reg: Register | None, what: str) -> DeviceError:
        """A one-line DeviceError naming the device, the register and what happened."""
        where = f"{reg.name} (address {reg.address}): " if reg is not None else ""
        return DeviceError(f"Inspire hand at {self.device}: {where}{what}")

    def _retry(self, reg: Register, verb: str, attempt: Callable[[], T]) -> T:
        """Runs `attempt`, once more if it got no reply; DeviceError after the second silence."""
        with self._lock:
            if not self._connected:
                raise self.error(reg, f"cannot {verb}: not connected (call connect())")
            try:
                return attempt()
            except _NoReply:
                pass
            try:
                return attempt()
            except _NoReply as e:
                raise self.error(reg, f"no reply to a {verb} within {self.timeout:g} s, twice ({e})") from None

    def read_register(self, reg: Register) -> list[int]:
        return self._retry(reg, "read", lambda: self._read_once(reg))

    def write_register(self, reg: Register, values: Sequence[int]) -> None:
        values = [int(v) for v in values]
        self._retry(reg, "write", lambda: self._write_once(reg, values))

    def _from_driver(self, x: np.ndarray) -> np.ndarray:
        """driver order -> register channel order"""
        out = np.empty_like(x)
        out[self._order] = x
        return out

    # ------------------------------------------------------------------------------ JointDriver
    def connect(self) -> None:
        """Opens the link, checks the hand answers, and sets its force threshold and speed for every finger."""
        with self._lock:
            if self._connected:
                self.close()
            self._open()
            self._connected = True
            try:
                self.read_register(HAND_ID)
                self.write_register(FORCE_SET, [self.force_limit] * N_FINGERS)
                self.write_register(SPEED_SET, [self.speed] * N_FINGERS)
            except DeviceError:
                self.close()
                raise
            self.stopped = False

    def read(self) -> JointReading:
        with self._lock:
            angles = np.array(self.read_register(ANGLE_ACT))
            stamp = time.monotonic()
            force = np.array(self.read_register(FORCE_ACT), np.float64)
            errors = self.read_register(ERROR)
        faults = tuple(f"{FINGERS[m]}: {what}" for m in DRIVER_ORDER for what in describe_errors(errors[m]))
        return JointReading(qpos=self.calibration.to_rad(angles)[self._order], stamp=stamp,
                            force=force[self._order], faults=faults)

    def send(self, targets: np.ndarray) -> np.ndarray:
        """Writes the targets (rad, driver order) as angles; returns the radians of the angles written."""
        t = np.asarray(targets, np.float64)
        if t.shape != (N_FINGERS,) or not np.isfinite(t).all():
            raise ValueError(f"targets must be {N_FINGERS} finite joint positions in rad, got {targets!r}")
        units, _ = self.calibration.to_units(self._from_driver(t))
        with self._lock:
            self.write_register(ANGLE_SET, units)
            self.stopped = False
        return self.calibration.to_rad(units)[self._order]

    def stop(self) -> None:
        """Holds every finger at the angle it has now."""
        with self._lock:
            self.write_register(ANGLE_SET, self.read_register(ANGLE_ACT))
            self.stopped = True

    def clear_errors(self) -> None:
        """Asks the hand to clear its fault flags (after the cause is removed)."""
        self.write_register(CLEAR_ERROR, [1])

    def close(self) -> None:
        with self._lock:
            if self._connected:
                self._connected = False
                self._close()

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InspireSerialDriver(InspireDriver):
    """The hand on an RS485 adapter (`port`: a device path, or any pyserial URL such as socket://host:port)."""

    def __init__(self, port: str, hand_id: int = 1, side: str = "right",
                 calibration: Calibration | str | Path | None = None, baudrate: int = 115200, timeout: float = 0.05,
                 force_limit: int = 500, speed: int = 1000):
        if not 1 <= hand_id <= 254:
            raise ValueError(f"hand_id must lie in 1..254, not {hand_id}")
        super().__init__(f"serial port {port} (hand id {hand_id})", side, calibration, force_limit, speed, timeout)
        self.port, self.hand_id, self.baudrate = port, hand_id, baudrate
        self._serial = None

    def _open(self) -> None:
        import serial

        try:
            self._serial = serial.serial_for_url(self.port, baudrate=self.baudrate, bytesize=8, parity="N",
                                                 stopbits=1, timeout=self.timeout, write_timeout=self.timeout)
        except (serial.SerialException, OSError, ValueError) as e:
            raise self.error(None, f"cannot open the port: {e}") from None

    def _close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except OSError:  # a port already gone is closed as far as we care
                pass
            self._serial = None

    def _transact(self, reg: Register, request: Frame) -> Frame:
        """Sends one request and returns its reply frame, checked against the request."""
        import serial

        ser = self._serial
        try:
            ser.reset_input_buffer()  # a late reply to an earlier request must not pass for this one's
            ser.write(encode_frame(request))
            head = ser.read(4)
            if len(head) < 4:
                raise _NoReply(f"{len(head)} bytes came")
            if head[:2] != REPLY_HEADER:
                raise self.error(reg, f"reply has a wrong header {head[:2].hex(' ')}")
            rest = ser.read(head[3] + 1)
        except (serial.SerialException, OSError, _TermiosError) as e:
            raise self.error(reg, f"the port failed or is disconnected: {e}") from None
        if len(rest) < head[3] + 1:
            raise _NoReply(f"a reply cut short after {4 + len(rest)} bytes")
        try:
            reply = decode_frame(head + rest, reply=True)
        except FrameError as e:
            raise self.error(reg, f"corrupted reply: {e}") from None
        if (reply.hand_id, reply.cmd, reply.address) != (request.hand_id, request.cmd, request.address):
            raise self.error(reg, f"reply is for another request (hand {reply.hand_id}, command 0x{reply.cmd:02x}, "
                                  f"address {reply.address})")
        return reply

    def _read_once(self, reg: Register) -> list[int]:
        reply = self._transact(reg, read_request(self.hand_id, reg))
        if len(reply.data) != reg.nbytes:
            raise self.error(reg, f"read returned {len(reply.data)} bytes, expected {reg.nbytes}")
        return reg.unpack(reply.data)

    def _write_once(self, reg: Register, values: Sequence[int]) -> None:
        reply = self._transact(reg, write_request(self.hand_id, reg, values))
        if reply.data != bytes([WRITE_OK]):
            raise self.error(reg, f"the hand refused the write (status {reply.data.hex(' ') or 'missing'})")


MODBUS_EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "device failure",
                     6: "device busy", 11: "gateway target failed to respond"}


class InspireModbusDriver(InspireDriver):
    """The hand over Modbus TCP (its Ethernet interface)."""

    def __init__(self, host: str = "192.168.11.210", port: int = 6000, unit: int = 1, side: str = "right",
                 calibration: Calibration | str | Path | None = None, force_limit: int = 500, speed: int = 1000,
                 timeout: float = 0.1):
        super().__init__(f"{host}:{port} (Modbus unit {unit})", side, calibration, force_limit, speed, timeout)
        self.host, self.port, self.unit = host, port, unit
        self._client = None

    def _open(self) -> None:
        from pymodbus.client import ModbusTcpClient

        # pymodbus retries nothing: the shared layer's single retry on silence is the only one
        self._client = ModbusTcpClient(self.host, port=self.port, timeout=self.timeout, retries=0)
        if not self._client.connect():
            self._client = None
            raise self.error(None, "no TCP connection (refused, unreachable or timed out)")

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _call(self, reg: Register, request: Callable):
        """Runs one pymodbus request; silence -> _NoReply, a lost link or an exception response -> DeviceError."""
        from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

        try:
            response = request()
        except ConnectionException as e:
            raise self.error(reg, f"connection lost: {e}") from None
        except ModbusIOException as e:
            raise _NoReply(str(e)) from None
        except (ModbusException, OSError) as e:
            raise self.error(reg, f"Modbus request failed: {e}") from None
        if response.isError():
            code = getattr(response, "exception_code", None)
            raise self.error(reg, f"Modbus exception {code} ({MODBUS_EXCEPTIONS.get(code, 'unknown')})")
        return response

    def _read_once(self, reg: Register) -> list[int]:
        r = self._call(reg, lambda: self._client.read_holding_registers(reg.address, count=reg.words,
                                                                        device_id=self.unit))
        if len(r.registers) != reg.words:
            raise self.error(reg, f"read returned {len(r.registers)} registers, expected {reg.words}")
        return reg.from_words(r.registers, reg.count)

    def _write_once(self, reg: Register, values: Sequence[int]) -> None:
        self._call(reg, lambda: self._client.write_registers(reg.address, reg.to_words(values), device_id=self.unit))


# ------------------------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dexenvs.hardware.inspire",
                                description="Inspire RH56 hand tools: regenerate a calibration file from the URDF.")
    p.add_argument("--write-calibration", choices=SIDES, required=True, metavar="right|left",
                   help="write the calibration of this hand side derived from ManiSkill's URDF")
    p.add_argument("--out", type=Path, default=None, help="where to write it (default: the shipped file)")
    args = p.parse_args(argv)
    print(write_calibration(args.write_calibration, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
