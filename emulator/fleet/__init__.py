"""Fleet mode: many complete modems (AT engine, module model, store, agent) on one event loop.

`telit-emu fleet --count N --lwm2m-server URI` (see emulator/fleet/runner.py) loads a device-management
server with N emulated modules, each with its own identity, UDP socket and (optionally) state dir.
"""
