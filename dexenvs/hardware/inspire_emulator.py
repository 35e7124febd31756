"""An emulated Inspire RH56 hand, so the drivers in `dexenvs.hardware.inspire` and everything above them run without a
hand: a register file with simple dynamics (`HandModel`), served over the serial protocol on a pseudo-terminal
(`SerialHandEmulator`) or as a Modbus TCP server on a local port (`ModbusHandEmulator`).

How it behaves where the manuals leave a choice (the emulator is strict so driver bugs show):

- A written value outside a register's range (0..1000; -1 is "keep" in ANGLE_SET) is ignored for that finger, the
  others in the same write take effect, and the write is acknowledged.
- A write to a read-only register or to an address that is no register (or a request that spans registers or splits a
  value) is refused: over serial with status byte 0x00 for a write and no reply for a read; over Modbus with the
  exception "illegal data address".
- A serial frame with a bad checksum or for another hand id gets no reply, as on an RS485 bus.
- The Modbus server answers any unit id, like a TCP device that ignores it.
- A finger with an ERROR bit stops where it is (STATUS 6 for a locked rotor, 5 for over-current, 7 for any other
  fault) until 1 is written to CLEAR_ERROR.

For tests: `HandModel.silent` makes both servers stop answering, `HandModel.corrupt_checksums` makes serial replies
carry a wrong checksum, `inject_fault` sets ERROR bits, `place_object` stops a closing finger at an angle where its
force rises to FORCE_SET (STATUS 3).
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import threading
import time
import tty
from typing import Sequence

from dexenvs.hardware.inspire import (ANGLE_ACT, ANGLE_OPEN, ANGLE_SET, CLEAR_ERROR, CMD_READ, CMD_WRITE, ERROR,
                                      FORCE_ACT, FORCE_SET, HAND_ID, N_FINGERS, REGISTERS, REQUEST_HEADER,
                                      SPEED_SET, STATUS_REG, TEMP, UNIT_MAX, WRITE_OK, Frame, FrameError, Register,
                                      decode_frame, encode_frame)

FULL_RANGE_S = 0.8
"""seconds a finger takes over the whole 0..1000 range at speed 1000; slower speeds scale it linearly"""
ROOM_TEMP, HOT_TEMP = 30, 75
"""TEMP a finger reports normally, and with an over-temperature fault"""
LOCKED_ROTOR, OVER_TEMPERATURE, OVER_CURRENT, MOTOR_FAULT, COMMUNICATION = (1 << b for b in range(5))
"""ERROR bits"""
RELEASING, GRASPING, REACHED, FORCE_REACHED, CURRENT_STOP, LOCKED_STOP, FAULT_STOP = 0, 1, 2, 3, 5, 6, 7
"""STATUS codes"""


class RegisterError(Exception):
    """A request the hand refuses: unknown address, read-only register, a span that is not within one register."""


def _fault_status(bits: int) -> int:
    if bits & LOCKED_ROTOR:
        return LOCKED_STOP
    if bits & OVER_CURRENT:
        return CURRENT_STOP
    return FAULT_STOP


class HandModel:
    """The register file of one hand and its fingers' motion.

    Each finger's angle moves toward ANGLE_SET at SPEED_SET / 1000 of full speed. Time passes through `advance(dt)`;
    with `realtime` it also passes by wall-clock time whenever a request reaches the model, so a driver sees fingers
    move as on a hand. All methods are thread-safe: the servers run in their own threads."""

    def __init__(self, hand_id: int = 1, realtime: bool = True, angle: int = ANGLE_OPEN):
        self._lock = threading.RLock()
        self.realtime = realtime
        self._last = time.monotonic()
        self._pos = [float(angle)] * N_FINGERS
        self._objects: list[int | None] = [None] * N_FINGERS
        self._regs: dict[str, list[int]] = {r.name: [0] * r.count for r in REGISTERS.values()}
        self._regs[HAND_ID.name] = [hand_id]
        for reg, v in ((ANGLE_SET, angle), (ANGLE_ACT, angle), (FORCE_SET, UNIT_MAX), (SPEED_SET, UNIT_MAX),
                       (STATUS_REG, REACHED), (TEMP, ROOM_TEMP)):
            self._regs[reg.name] = [v] * N_FINGERS
        self.silent = False
        """no replies at all, as a hand that lost power or its cable"""
        self.corrupt_checksums = False
        """serial replies carry a wrong checksum"""

    # ------------------------------------------------------------------------------ inspection and injection
    def register(self, name: str) -> list[int]:
        """The values of a register block now (after letting wall time pass, in realtime mode)."""
        with self._lock:
            self._sync()
            return list(self._regs[name])

    @property
    def hand_id(self) -> int:
        return self._regs[HAND_ID.name][0]

    @hand_id.setter
    def hand_id(self, value: int) -> None:
        with self._lock:
            self._regs[HAND_ID.name][0] = value

    def inject_fault(self, finger: int, bits: int) -> None:
        """Sets ERROR bits on a finger (register channel); the finger stops until CLEAR_ERROR."""
        with self._lock:
            self._sync()
            self._regs[ERROR.name][finger] |= bits
            if bits & OVER_TEMPERATURE:
                self._regs[TEMP.name][finger] = HOT_TEMP
            self._update_status(finger)

    def place_object(self, finger: int, angle: int | None) -> None:
        """A finger closing past `angle` meets an object there (None removes it)."""
        with self._lock:
            self._sync()
            self._objects[finger] = angle

    def advance(self, dt: float) -> None:
        """Lets `dt` seconds of motion pass."""
        with self._lock:
            for m in range(N_FINGERS):
                self._move(m, dt)

    # ------------------------------------------------------------------------------ dynamics
    def _sync(self) -> None:
        now = time.monotonic()
        if self.realtime:
            self.advance(now - self._last)
        self._last = now

    def _move(self, m: int, dt: float) -> None:
        regs = self._regs
        if regs[ERROR.name][m]:
            self._update_status(m)
            return
        target, pos, obj = regs[ANGLE_SET.name][m], self._pos[m], self._objects[m]
        goal = target if obj is None or target >= obj else max(target, min(pos, obj))
        step = UNIT_MAX / FULL_RANGE_S * (regs[SPEED_SET.name][m] / UNIT_MAX) * dt
        self._pos[m] = min(pos + step, goal) if goal > pos else max(pos - step, goal)
        regs[ANGLE_ACT.name][m] = round(self._pos[m])
        regs[FORCE_ACT.name][m] = regs[FORCE_SET.name][m] if self._touching(m) else 0
        self._update_status(m)

    def _touching(self, m: int) -> bool:
        """The finger presses on its object: it is at the object and its target lies beyond it."""
        obj = self._objects[m]
        return obj is not None and self._regs[ANGLE_SET.name][m] < obj and self._pos[m] <= obj

    def _update_status(self, m: int) -> None:
        regs = self._regs
        if regs[ERROR.name][m]:
            status = _fault_status(regs[ERROR.name][m])
        elif self._touching(m):
            status = FORCE_REACHED
        elif regs[ANGLE_SET.name][m] > self._pos[m]:
            status = RELEASING
        elif regs[ANGLE_SET.name][m] < self._pos[m]:
            status = GRASPING
        else:
            status = REACHED
        regs[STATUS_REG.name][m] = status

    def _apply_write(self, reg: Register, first: int, values: Sequence[int]) -> None:
        """Stores written values by the hand's rules: out-of-range values are ignored, CLEAR_ERROR acts."""
        if not reg.writable:
            raise RegisterError(f"{reg.name} is read-only")
        if reg is CLEAR_ERROR:
            if values and values[0] == 1:
                self._regs[ERROR.name] = [0] * N_FINGERS
                self._regs[TEMP.name] = [ROOM_TEMP] * N_FINGERS
                for m in range(N_FINGERS):
                    self._update_status(m)
            return
        lo, hi = reg.valid
        stored = self._regs[reg.name]
        for i, v in enumerate(values, start=first):
            if lo <= v <= hi:
                stored[i] = v
        if reg is ANGLE_SET:
            for m in range(N_FINGERS):
                self._update_status(m)

    # ------------------------------------------------------------------------------ protocol access
    def _locate(self, address: int, length: int, words: bool) -> tuple[Register, int, int]:
        """(register, first value, number of values) of a request for `length` bytes (serial) or registers
        (Modbus) at `address`; RegisterError unless it lies inside one register and on value boundaries."""
        for reg in REGISTERS.values():
            size = reg.words if words else reg.nbytes
            offset = address - reg.address
            if 0 <= offset < size:
                break
        else:
            raise RegisterError(f"no register at address {address}")
        if length < 1 or offset + length > size:
            raise RegisterError(f"{length} {'registers' if words else 'bytes'} at {address} run past {reg.name}")
        if words:
            per = 1 if reg.width == 2 else 2
            first = offset * per
            return reg, first, min(length * per, reg.count - first)
        if offset % reg.width or length % reg.width:
            raise RegisterError(f"{length} bytes at {address} split a value of {reg.name}")
        return reg, offset // reg.width, length // reg.width

    def read_bytes(self, address: int, length: int) -> bytes:
        """A serial read."""
        with self._lock:
            self._sync()
            reg, first, n = self._locate(address, length, words=False)
            return reg.pack(self._regs[reg.name][first:first + n])

    def write_bytes(self, address: int, data: bytes) -> None:
        """A serial write."""
        with self._lock:
            self._sync()
            reg, first, n = self._locate(address, len(data), words=False)
            self._apply_write(reg, first, reg.unpack(data))

    def read_words(self, address: int, count: int) -> list[int]:
        """A Modbus holding-register read."""
        with self._lock:
            self._sync()
            reg, first, n = self._locate(address, count, words=True)
            return reg.to_words(self._regs[reg.name][first:first + n])

    def write_words(self, address: int, words: Sequence[int]) -> None:
        """A Modbus holding-register write."""
        with self._lock:
            self._sync()
            reg, first, n = self._locate(address, len(words), words=True)
            self._apply_write(reg, first, reg.from_words(words, n))


# ----------------------------------------------------------------------------------------------------------- serial
class SerialHandEmulator:
    """The hand on a pseudo-terminal: `InspireSerialDriver(port=emu.port)` talks to it as to an RS485 adapter."""

    QUIET_S = 0.02
    """a partial frame followed by this much silence is dropped, as a UART receiver resynchronizes"""

    def __init__(self, model: HandModel | None = None, hand_id: int = 1):
        self.model = model if model is not None else HandModel(hand_id)
        self.model.hand_id = hand_id
        self.hand_id = hand_id
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: the bytes pass as they are
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self.requests = 0
        """frames addressed to this hand that it received"""
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"inspire-serial-emulator {self.port}")
        self._thread.start()

    def _serve(self) -> None:
        buf = bytearray()
        while not self._closing.is_set():
            ready, _, _ = select.select([self._master], [], [], self.QUIET_S)
            if not ready:
                buf.clear()
                continue
            try:
                buf += os.read(self._master, 4096)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                time.sleep(self.QUIET_S)  # EIO: nobody has the port open just now
                continue
            for frame in self._frames(buf):
                reply = self._answer(frame)
                if reply is not None:
                    self._send(reply)

    def _frames(self, buf: bytearray) -> list[Frame]:
        """The complete, valid request frames at the start of `buf`, removed from it; garbage is skipped."""
        frames = []
        while True:
            start = buf.find(REQUEST_HEADER)
            if start < 0:
                del buf[:max(len(buf) - 1, 0)]  # keep a last byte that may begin a header
                return frames
            del buf[:start]
            if len(buf) < 4 or len(buf) < buf[3] + 5:
                return frames
            raw = bytes(buf[:buf[3] + 5])
            try:
                frames.append(decode_frame(raw, reply=False))
                del buf[:len(raw)]
            except FrameError:
                del buf[:2]  # not a frame after all: look for the next header

    def _answer(self, req: Frame) -> bytes | None:
        model = self.model
        if req.hand_id != self.hand_id or model.silent:
            return None
        self.requests += 1
        try:
            if req.cmd == CMD_READ and len(req.data) == 1:
                data = model.read_bytes(req.address, req.data[0])
            elif req.cmd == CMD_WRITE and req.data:
                model.write_bytes(req.address, req.data)
                data = bytes([WRITE_OK])
            else:
                return None
        except RegisterError:
            if req.cmd == CMD_READ:
                return None
            data = b"\x00"
        raw = encode_frame(Frame(req.hand_id, req.cmd, req.address, data, reply=True))
        if model.corrupt_checksums:
            raw = raw[:-1] + bytes([raw[-1] ^ 0xFF])
        return raw

    def _send(self, raw: bytes) -> None:
        try:
            os.write(self._master, raw)
        except OSError as e:  # nobody reads the port (buffer full, or closed): the reply is lost, as on a bus
            if e.errno not in (errno.EAGAIN, errno.EIO):
                raise

    def close(self) -> None:
        """Stops serving and removes the pseudo-terminal; a driver still on it sees the port disconnected."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._thread.join(timeout=1.0)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> SerialHandEmulator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------------------- modbus
class ModbusHandEmulator:
    """The hand as a Modbus TCP server on `host`:`port` (0: a free port, then `.port` says which), run by its own
    asyncio loop in a background thread. Its holding registers are the model's: reads show it live, writes go through
    its rules."""

    FIRST, LAST = HAND_ID.address, max(r.address + r.words for r in REGISTERS.values())
    """the span of addresses pymodbus serves; the model decides which of them are registers"""

    def __init__(self, model: HandModel | None = None, host: str = "127.0.0.1", port: int = 0):
        self.model = model if model is not None else HandModel()
        self.host, self.port = host, port
        self._server = None
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"inspire-modbus-emulator {host}")
        self._thread.start()
        if not self._started.wait(timeout=5.0):
            self.close()
            raise RuntimeError(f"the Modbus emulator did not start on {host}:{port}")
        if self._failure is not None:
            self.close()
            raise RuntimeError(f"the Modbus emulator cannot serve on {host}:{port}: {self._failure}")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except Exception as e:  # reported to the constructor, which raises it in the caller's thread
            self._failure = e
        self._started.set()
        if self._failure is None:
            self._loop.run_forever()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _start(self) -> None:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        # id 0: the device answers every unit id
        device = SimDevice(id=0, simdata=[SimData(self.FIRST, count=self.LAST - self.FIRST,
                                                  datatype=DataType.REGISTERS)], action=self._access)
        # ignore_missing_devices: a silent hand (NoSuchIdException from `_access`) sends nothing back
        self._server = ModbusTcpServer(device, address=(self.host, self.port), ignore_missing_devices=True)
        await self._server.serve_forever(background=True)
        if self._server.transport is None:
            raise OSError("could not listen")
        self.port = self._server.transport.sockets[0].getsockname()[1]

    async def _access(self, function_code: int, start: int, address: int, count: int, registers: list[int],
                      values: list[int] | None):
        """pymodbus's hook on every request: the model serves the read (filling pymodbus's copy) or takes the write."""
        from pymodbus.constants import ExcCodes
        from pymodbus.exceptions import NoSuchIdException

        if self.model.silent:
            raise NoSuchIdException("the emulated hand is silent")
        try:
            if values is None:
                registers[address - start:address - start + count] = self.model.read_words(address, count)
            else:
                self.model.write_words(address, list(values))
        except RegisterError:
            return ExcCodes.ILLEGAL_ADDRESS
        return None

    def close(self) -> None:
        """Stops the server (its connections close) and its thread."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None and self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(timeout=1.0)
            except Exception:  # the loop stops below either way
                pass
        try:
            self._loop.call_soon_threadsafe(self._loop.stop)
        except RuntimeError:  # the loop already ended (the server never started)
            pass
        self._thread.join(timeout=1.0)

    def __enter__(self) -> ModbusHandEmulator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
