"""Sim-to-real: a dexsuite task on devices with the sim env's API.

- `env.HardwareEnv`: the task's spaces, controller and success on measured state, a fixed-rate loop, a watchdog;
- `safety.SafetyLayer`: the always-on filter every joint target passes (limits, workspace, step and speed caps,
  force, stale sensors, late commands, e-stop), logging each intervention;
- `loopback.LoopbackRobot`: a second simulation of the task standing in for the robot, with latency, noise, lost and
  stale messages;
- `inspire`: the Inspire RH56 hand's serial and Modbus TCP drivers with their calibration; `inspire_emulator`: the
  hand's protocol emulator;
- `setups.make_setup`: the named setups `agents.deploy --hardware` runs.
"""
