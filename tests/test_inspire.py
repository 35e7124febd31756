"""The Inspire RH56 hand: serial frames and register codecs, the URDF-derived calibration, and both drivers against the
hand emulator (serial on a pseudo-terminal, Modbus TCP on a local port): register contents and channel order, motion,
force, faults, stop, and the errors a silent, corrupting, refusing or vanished hand raises."""

import json
import threading
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from dexenvs.hardware import inspire
from dexenvs.hardware.drivers import DeviceError, JointDriver
from dexenvs.hardware.inspire import (ANGLE_ACT, ANGLE_SET, ERROR, FORCE_SET, HAND_ID, Calibration, CalibrationError,
                                      Frame, FrameError, InspireModbusDriver, InspireSerialDriver, Register,
                                      decode_frame, encode_frame)
from dexenvs.hardware.inspire_emulator import (FORCE_REACHED, FULL_RANGE_S, LOCKED_ROTOR, OVER_CURRENT,
                                               OVER_TEMPERATURE, REACHED, HandModel, ModbusHandEmulator,
                                               RegisterError, SerialHandEmulator)

INDEX, THUMB_ROTATION = 3, 5  # register channels
CAL = Calibration.default("right")


def open_targets(**closed: float) -> np.ndarray:
    """Driver-order targets: every finger open except the named ones, at the given fraction of closed."""
    names = dict(thumb_yaw=0, thumb_pitch=1, index=2, middle=3, ring=4, pinky=5)
    lower, upper = CAL.lower[list(inspire.DRIVER_ORDER)], CAL.upper[list(inspire.DRIVER_ORDER)]
    t = upper.copy()
    for name, frac in closed.items():
        i = names[name]
        t[i] = upper[i] + frac * (lower[i] - upper[i])
    return t


# ------------------------------------------------------------------------------------------------------------ frames
def test_checksum_known_answer():
    # read 12 bytes of ANGLE_ACT (1546 = 0x060A) from hand 1:
    # EB 90 | 01 (id) 04 (len) 11 (read) 0A 06 (address, little-endian) 0C (12 bytes) | checksum
    # checksum = 0x01 + 0x04 + 0x11 + 0x0A + 0x06 + 0x0C = 1 + 4 + 17 + 10 + 6 + 12 = 50 = 0x32
    raw = encode_frame(inspire.read_request(1, ANGLE_ACT))
    assert raw == bytes.fromhex("EB 90 01 04 11 0A 06 0C 32")
    # write FORCE_SET (1498 = 0x05DA) = 500 (0x01F4) on every finger: LEN = 12 + 3 = 15 = 0x0F;
    # checksum = 0x01 + 0x0F + 0x12 + 0xDA + 0x05 + 6 * (0xF4 + 0x01) = 0x101 + 0x5BE = 0x6BF -> 0xBF
    raw = encode_frame(inspire.write_request(1, FORCE_SET, [500] * 6))
    assert raw == bytes.fromhex("EB 90 01 0F 12 DA 05" + " F4 01" * 6 + " BF")


@pytest.mark.parametrize("frame", [
    Frame(1, inspire.CMD_READ, 1546, b"\x0c"),
    Frame(7, inspire.CMD_WRITE, 1486, ANGLE_SET.pack([1000, -1, 0, 500, 999, 1])),
    Frame(1, inspire.CMD_READ, 1606, bytes(range(6)), reply=True),
    Frame(254, inspire.CMD_WRITE, 1004, b"\x01", reply=True),
])
def test_frame_round_trip(frame):
    raw = encode_frame(frame)
    assert raw[:2] == (inspire.REPLY_HEADER if frame.reply else inspire.REQUEST_HEADER)
    assert decode_frame(raw, reply=frame.reply) == frame


def test_a_corrupted_frame_is_rejected():
    raw = encode_frame(Frame(1, inspire.CMD_READ, 1546, bytes(12), reply=True))
    flipped = raw[:6] + bytes([raw[6] ^ 0x01]) + raw[7:]
    with pytest.raises(FrameError, match="bad checksum"):
        decode_frame(flipped, reply=True)
    with pytest.raises(FrameError, match="wrong header"):
        decode_frame(raw, reply=False)  # a reply's header where a request's belongs
    with pytest.raises(FrameError, match="length"):
        decode_frame(raw[:-2] + raw[-1:], reply=True)


def test_register_codecs():
    assert ANGLE_SET.unpack(ANGLE_SET.pack([-1, 0, 1000, 1, 2, 3])) == [-1, 0, 1000, 1, 2, 3]
    assert ANGLE_SET.from_words(ANGLE_SET.to_words([-1, 1000])) == [-1, 1000]
    assert ERROR.words == 3
    assert ERROR.to_words([1, 2, 3, 4, 5, 6]) == [0x0201, 0x0403, 0x0605]  # lower finger in the low byte
    assert ERROR.from_words([0x0201, 0x0403, 0x0605]) == [1, 2, 3, 4, 5, 6]
    assert HAND_ID.from_words([0x0007], HAND_ID.count) == [7]


# ------------------------------------------------------------------------------------------------------- calibration
def test_units_and_radians_round_trip():
    units = np.arange(0, 1001)
    for m in range(6):
        col = np.full((len(units), 6), 500)
        col[:, m] = units
        back = np.array([CAL.to_units(CAL.to_rad(row))[0] for row in col])
        assert (back[:, m] == units).all()
    rng = np.random.default_rng(0)
    rad = rng.uniform(CAL.lower, CAL.upper, size=(200, 6))
    step = (CAL.upper - CAL.lower) / 1000
    for r in rad:
        units, clipped = CAL.to_units(r)
        assert not clipped.any()
        assert (np.abs(CAL.to_rad(units) - r) <= step / 2 + 1e-12).all()  # within half a unit, so within one


@pytest.mark.parametrize("side", ["right", "left"])
def test_open_and_closed_are_the_urdf_limits(side):
    cal = Calibration.default(side)
    joints = {j.get("name"): j.find("limit") for j in ET.parse(inspire.urdf_path(side)).getroot().iter("joint")}
    lower = np.array([float(joints[n].get("lower")) for n in cal.joint_names])
    upper = np.array([float(joints[n].get("upper")) for n in cal.joint_names])
    assert np.allclose(cal.to_rad(np.full(6, 1000)), upper)  # open
    assert np.allclose(cal.to_rad(np.zeros(6)), lower)  # closed
    assert cal.joint_names == tuple(f"{side}_hand_{j}_joint" for j in
                                    ("pinky_MCP", "ring_MCP", "middle_MCP", "index_MCP", "thumb_CMC_pitch",
                                     "thumb_CMC_yaw"))
    assert np.allclose(lower[:4], -1.34) and np.isclose(lower[4], -0.48, atol=1e-3)
    assert np.isclose(lower[5], -1.309, atol=1e-3) and np.allclose(upper, 0)


def test_targets_past_the_range_clip_and_say_so():
    units, clipped = CAL.to_units(CAL.lower - 0.1)
    assert (units == 0).all() and clipped.all()
    units, clipped = CAL.to_units(CAL.upper + 0.1)
    assert (units == 1000).all() and clipped.all()


@pytest.mark.parametrize("side", ["right", "left"])
def test_shipped_calibration_is_what_the_urdf_gives(side, tmp_path):
    out = inspire.write_calibration(side, tmp_path / f"{side}.json")
    assert json.loads(out.read_text()) == json.loads(Calibration.default_path(side).read_text())
    assert inspire.main(["--write-calibration", side, "--out", str(tmp_path / "cli.json")]) == 0
    assert (tmp_path / "cli.json").read_text() == out.read_text()


def _broken(doc: dict, edit) -> dict:
    doc = json.loads(json.dumps(doc))
    edit(doc)
    return doc


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["channels"][2].pop("rad_open"), r"channels\[2\] lacks 'rad_open'"),
    (lambda d: d["channels"][0].update(units_open="open"), r"channels\[0\].units_open must be a int"),
    (lambda d: d["channels"][1].update(units_open=1200), r"units_open must lie in 0..1000"),
    (lambda d: d["channels"][4].update(register=0), r"'register' must name each of 0..5 once"),
    (lambda d: d["channels"].pop(), r"'channels' must be a list of 6"),
    (lambda d: d.update(side="middle"), r"'side' must be one of"),
    (lambda d: d["channels"][3].update(joint="left_hand_index_MCP_joint"), r"not a joint of the right hand"),
    (lambda d: d["channels"][5].update(rad_closed=0.0), r"open and closed must differ"),
])
def test_a_broken_calibration_file_says_what_is_wrong(tmp_path, edit, message):
    doc = json.loads(Calibration.default_path("right").read_text())
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(_broken(doc, edit)))
    with pytest.raises(CalibrationError, match=message) as e:
        Calibration.load(path)
    assert str(path) in str(e.value)


def test_an_unreadable_calibration_file_says_so(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(CalibrationError, match=rf"{path}: not valid JSON"):
        Calibration.load(path)
    with pytest.raises(CalibrationError, match="cannot read"):
        Calibration.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="is for the right hand, not the left"):
        InspireSerialDriver("/dev/null", side="left", calibration=Calibration.default_path("right"))


# ---------------------------------------------------------------------------------------------------------- the model
def test_model_moves_at_the_set_speed_and_ignores_out_of_range_values():
    model = HandModel(realtime=False)
    model.write_bytes(ANGLE_SET.address, ANGLE_SET.pack([0] * 6))
    model.write_bytes(inspire.SPEED_SET.address, inspire.SPEED_SET.pack([1000, 500, 1000, 1000, 1000, 1000]))
    model.advance(FULL_RANGE_S / 2)
    act = model.register("ANGLE_ACT")
    assert act[0] == 500 and act[1] == 750  # half speed, half the travel
    model.advance(FULL_RANGE_S)
    assert model.register("ANGLE_ACT")[:2] == [0, 250]
    # -1 keeps a finger, out-of-range values are ignored, the rest of the write takes effect
    model.write_bytes(ANGLE_SET.address, ANGLE_SET.pack([-1, 1200, 300, -5, 1000, 0]))
    assert model.register("ANGLE_SET") == [0, 0, 300, 0, 1000, 0]
    for address, length in ((ANGLE_ACT.address, 12), (1300, 2), (ANGLE_SET.address + 1, 2), (ANGLE_SET.address, 14)):
        with pytest.raises(RegisterError):
            model.write_bytes(address, bytes(length))


def test_model_finger_meets_an_object_and_a_fault_stops_it():
    model = HandModel(realtime=False)
    model.place_object(INDEX, 400)
    model.write_bytes(ANGLE_SET.address, ANGLE_SET.pack([0] * 6))
    model.advance(2 * FULL_RANGE_S)
    assert model.register("ANGLE_ACT")[INDEX] == 400
    assert model.register("STATUS")[INDEX] == FORCE_REACHED
    assert model.register("FORCE_ACT")[INDEX] == model.register("FORCE_SET")[INDEX] > 0
    model.write_bytes(ANGLE_SET.address, ANGLE_SET.pack([1000] * 6))
    model.inject_fault(0, LOCKED_ROTOR)
    model.advance(2 * FULL_RANGE_S)
    assert model.register("ANGLE_ACT")[0] == 0 and model.register("STATUS")[0] == 6
    assert model.register("ANGLE_ACT")[INDEX] == 1000 and model.register("FORCE_ACT")[INDEX] == 0
    model.write_bytes(inspire.CLEAR_ERROR.address, b"\x01")
    model.advance(2 * FULL_RANGE_S)
    assert model.register("ANGLE_ACT")[0] == 1000 and model.register("STATUS")[0] == REACHED


# ---------------------------------------------------------------------------------------- the drivers, both transports
class SerialRig:
    name = "serial"

    def __init__(self, **driver_kw):
        self.model = HandModel(realtime=False)
        self.emu = SerialHandEmulator(self.model, hand_id=1)
        self.driver = InspireSerialDriver(self.emu.port, hand_id=1, **driver_kw)
        self.where = self.emu.port

    def close(self):
        self.driver.close()
        self.emu.close()


class ModbusRig:
    name = "modbus"

    def __init__(self, **driver_kw):
        self.model = HandModel(realtime=False)
        self.emu = ModbusHandEmulator(self.model, host="127.0.0.1", port=0)
        self.driver = InspireModbusDriver("127.0.0.1", self.emu.port, **driver_kw)
        self.where = f"127.0.0.1:{self.emu.port}"

    def close(self):
        self.driver.close()
        self.emu.close()


@pytest.fixture(params=[SerialRig, ModbusRig], ids=["serial", "modbus"])
def rig(request):
    r = request.param(force_limit=321, speed=777)
    r.driver.connect()
    yield r
    r.close()


def test_driver_is_a_joint_driver(rig):
    d = rig.driver
    assert isinstance(d, JointDriver)
    assert d.joint_names == ("right_hand_thumb_CMC_yaw_joint", "right_hand_thumb_CMC_pitch_joint",
                             "right_hand_index_MCP_joint", "right_hand_middle_MCP_joint", "right_hand_ring_MCP_joint",
                             "right_hand_pinky_MCP_joint")
    assert np.allclose(d.upper, 0) and np.allclose(d.lower, [-1.309, -0.48, -1.34, -1.34, -1.34, -1.34], atol=1e-3)
    assert d.force_unit == "inspire force units (0-1000)"


def test_connect_sets_force_and_speed(rig):
    assert rig.model.register("FORCE_SET") == [321] * 6
    assert rig.model.register("SPEED_SET") == [777] * 6


def test_send_writes_units_in_register_order(rig):
    sent = rig.driver.send(open_targets(index=1.0))
    assert rig.model.register("ANGLE_SET") == [1000, 1000, 1000, 0, 1000, 1000]  # index is channel 3
    assert np.allclose(sent, open_targets(index=1.0))
    sent = rig.driver.send(open_targets(thumb_yaw=0.25, pinky=0.5))
    assert rig.model.register("ANGLE_SET") == [500, 1000, 1000, 1000, 1000, 750]  # pinky 0, thumb rotation 5


def test_send_returns_the_quantized_targets_and_read_follows(rig):
    rng = np.random.default_rng(1)
    targets = rng.uniform(rig.driver.lower, rig.driver.upper)
    sent = rig.driver.send(targets)
    step = (rig.driver.upper - rig.driver.lower) / 1000
    assert (np.abs(sent - targets) <= step / 2 + 1e-12).all() and not np.array_equal(sent, targets)
    units = rig.model.register("ANGLE_SET")
    assert np.allclose(CAL.to_rad(units)[list(inspire.DRIVER_ORDER)], sent)
    before = rig.driver.read()
    assert np.allclose(before.qpos, 0)  # nothing moved yet: the model's time stands still
    rig.model.advance(2 * FULL_RANGE_S)
    r = rig.driver.read()
    assert np.allclose(r.qpos, sent) and r.faults == () and np.allclose(r.force, 0)
    assert before.stamp < r.stamp <= time.monotonic()


def test_force_shows_where_a_finger_meets_an_object(rig):
    rig.model.place_object(INDEX, 600)
    rig.driver.send(open_targets(index=1.0))
    rig.model.advance(2 * FULL_RANGE_S)
    r = rig.driver.read()
    assert np.isclose(r.qpos[2], CAL.to_rad(np.full(6, 600))[INDEX])
    assert r.force[2] == 321 and r.force[[0, 1, 3, 4, 5]].sum() == 0
    assert rig.model.register("STATUS")[INDEX] == FORCE_REACHED


def test_faults_are_reported_by_finger_and_clear(rig):
    rig.model.inject_fault(INDEX, OVER_CURRENT)
    rig.model.inject_fault(THUMB_ROTATION, OVER_TEMPERATURE)  # the high byte of the last ERROR word on Modbus
    r = rig.driver.read()
    assert r.faults == ("thumb rotation: over-temperature", "index: over-current")
    rig.driver.send(open_targets(index=1.0))
    rig.model.advance(2 * FULL_RANGE_S)
    assert rig.model.register("ANGLE_ACT")[INDEX] == 1000  # a faulted finger does not move
    rig.driver.clear_errors()
    rig.model.advance(2 * FULL_RANGE_S)
    r = rig.driver.read()
    assert r.faults == () and np.isclose(r.qpos[2], rig.driver.lower[2])


def test_stop_holds_where_the_fingers_are(rig):
    rig.driver.send(open_targets(index=1.0, middle=1.0))
    rig.model.advance(FULL_RANGE_S / 4)  # part of the way
    rig.driver.stop()
    held = rig.model.register("ANGLE_ACT")
    assert rig.model.register("ANGLE_SET") == held and 0 < held[INDEX] < 1000 and rig.driver.stopped
    rig.model.advance(2 * FULL_RANGE_S)
    assert rig.model.register("ANGLE_ACT") == held
    rig.driver.send(open_targets())  # the next send (after the safety layer's reset) moves the hand again
    assert not rig.driver.stopped and rig.model.register("ANGLE_SET") == [1000] * 6


def test_a_refused_request_raises(rig):
    with pytest.raises(DeviceError, match=rf"{rig.where}.*ANGLE_ACT \(address 1546\).*"
                                          r"(refused the write|illegal data address)"):
        rig.driver.write_register(ANGLE_ACT, [0] * 6)  # read-only
    bogus = Register("BOGUS", 1300, 6, 2)
    with pytest.raises(DeviceError, match=rf"{rig.where}.*BOGUS \(address 1300\)"):
        rig.driver.read_register(bogus)  # serial: no reply; Modbus: illegal data address


def test_a_silent_hand_raises_after_one_retry(rig):
    rig.model.silent = True
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match=rf"{rig.where}.*ANGLE_ACT.*no reply to a read within .* twice"):
        rig.driver.read()
    elapsed = time.monotonic() - t0
    assert 2 * rig.driver.timeout * 0.9 <= elapsed < 2 * rig.driver.timeout + 0.3
    rig.model.silent = False
    assert np.allclose(rig.driver.read().qpos, 0)  # the link recovers when the hand answers again


def test_a_hand_that_goes_away_raises(rig):
    rig.emu.close()
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match=rf"{rig.where}.*ANGLE_ACT"):
        rig.driver.read()
    assert time.monotonic() - t0 < 2 * rig.driver.timeout + 0.3
    with pytest.raises(DeviceError, match=rig.where):
        rig.driver.connect()


def test_not_connected_raises():
    d = InspireSerialDriver("/dev/null/none")
    with pytest.raises(DeviceError, match="not connected"):
        d.read()
    with pytest.raises(DeviceError, match="/dev/null/none.*cannot open"):
        d.connect()


# ---------------------------------------------------------------------------------------------- transport specifics
def test_serial_corrupted_reply_raises():
    rig = SerialRig()
    try:
        rig.driver.connect()
        rig.model.corrupt_checksums = True
        with pytest.raises(DeviceError, match=rf"{rig.emu.port}.*ANGLE_ACT.*corrupted reply: bad checksum"):
            rig.driver.read()
    finally:
        rig.close()


def test_serial_another_hand_id_gets_no_reply():
    with SerialHandEmulator(HandModel(realtime=False), hand_id=2) as emu:
        d = InspireSerialDriver(emu.port, hand_id=1)
        with pytest.raises(DeviceError, match=rf"{emu.port} \(hand id 1\): HAND_ID .* no reply"):
            d.connect()
        assert emu.requests == 0
        d = InspireSerialDriver(emu.port, hand_id=2)
        d.connect()
        d.close()


def test_serial_emulator_resynchronizes_after_garbage():
    import serial

    with SerialHandEmulator(HandModel(realtime=False)) as emu, serial.Serial(emu.port, timeout=0.2) as port:
        good = encode_frame(inspire.read_request(1, HAND_ID))
        bad = bytearray(encode_frame(inspire.read_request(1, ANGLE_ACT)))
        bad[-1] ^= 0xFF
        port.write(b"\x00\xeb\x17" + bytes(bad) + good)
        reply = decode_frame(port.read(9), reply=True)
        assert reply.address == HAND_ID.address and reply.data == b"\x01"
        assert port.read(1) == b""  # the frame with the bad checksum got no reply


def test_modbus_refused_connection_raises():
    with ModbusHandEmulator(HandModel(realtime=False)) as emu:
        port = emu.port
    d = InspireModbusDriver("127.0.0.1", port)
    with pytest.raises(DeviceError, match=rf"127.0.0.1:{port}.*no TCP connection"):
        d.connect()


def test_modbus_emulator_closes_quickly_and_leaves_nothing():
    threads = set(threading.enumerate())
    emu = ModbusHandEmulator(HandModel())
    d = InspireModbusDriver("127.0.0.1", emu.port)
    d.connect()
    t0 = time.monotonic()
    emu.close()
    assert time.monotonic() - t0 < 1.0
    d.close()
    assert set(threading.enumerate()) <= threads
    again = ModbusHandEmulator(HandModel(), port=emu.port)  # the port is free again
    again.close()


def test_realtime_model_moves_by_wall_time():
    with SerialHandEmulator(HandModel()) as emu:
        d = InspireSerialDriver(emu.port, speed=1000)
        d.connect()
        d.send(open_targets(index=1.0))
        time.sleep(FULL_RANGE_S / 4)
        mid = d.read().qpos[2]
        time.sleep(FULL_RANGE_S)
        end = d.read().qpos[2]
        d.close()
    assert d.lower[2] < mid < d.upper[2] and np.isclose(end, d.lower[2])
