"""Module profile: identity, SIM, network and LwM2M defaults of one emulated module.

The built-in default is an ME910C1-WW. A user TOML file overrides any key, e.g.

    [identity]
    model = "ME910C1-E1"
    imei = "351234567890123"
    [network]
    operator = "Emu Telecom"
    registration = 5        # 1 home, 5 roaming
"""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "identity": {
        "manufacturer": "Telit",
        "model": "ME910C1-WW",
        "revision": "M0B.600004",          # the guide's applicability: 30.00.xx8 / M0B.xx0004
        "software": "30.00.008",
        "imei": "354938100000001",
        "ati": {                             # ATI<n> answers; missing numbers answer only OK
            "0": "{model}", "1": "0", "2": "OK", "3": "{manufacturer}", "4": "{model}",
            "5": "{revision}",
        },
        "serial": "",                        # defaults to the IMEI
    },
    "sim": {
        "present": True,
        "pin": "",                           # "" = no PIN lock
        "puk": "12345678",
        "imsi": "001010123456789",
        "iccid": "89882390000012345678",
    },
    "network": {
        "attach_delay": 2.0,                 # seconds from power-on (or +CFUN=1) to registered
        "registration": 1,                   # 1 registered home, 5 roaming
        "operator": "Emulated Net",
        "plmn": "00101",
        "act": 8,                            # +CEREG/+COPS access technology (8: LTE Cat-M1, 9: NB-IoT)
        "tac": "3AD6",
        "ci": "490A66",
        "lac": "3AD6",
        "rssi": 18,                          # +CSQ value 0..31
        "rsrq": 20, "rsrp": 60,              # +CESQ values
        "ip_base": "10.81.0.",               # PDP addresses: ip_base + (cid + 1)
    },
    "gnss": {                                # the fix the emulated receiver reports once powered
        "latitude": 45.7136, "longitude": 13.7378, "altitude": 40.0,
        "radius": 5.0,                       # horizontal uncertainty, metres (/6/0/3)
        "hdop": 1.0, "satellites": 8,
    },
    "battery": {                             # #CBC and the Device object's /3/0/7, /3/0/9, /3/0/20
        "voltage_mv": 3800,
        "level": 100,                        # percent
        "charger": 0,                        # 0 not connected, 1 charging, 2 charge completed
    },
    "adc": {                                 # #ADC: the voltage (mV) on each analog input, by index
        "inputs": {"1": 0},
    },
    "lwm2m": {
        "tlt_urcs": True,                    # LWM2M-TLT registration URCs shown
        "tlt_guide_format": False,           # True: "#LWM2M-TLT: <event>,<ssid>,<url>" (guide's syntax line)
        "stat_dis_bare": True,               # #LWM2MGETSTAT: "DIS" right after a disable (guide example)
        "servers": {                         # #LWM2MSTS <serverURI> entries -> URIs (the real ones are not reachable)
            "10": ["coaps://127.0.0.1:5784", 1],
            "11": ["coaps://127.0.0.1:5684", 0],
            "12": ["coap://127.0.0.1:5683", 0],
            "20": ["coaps://127.0.0.1:5784", 1],
        },
        "default_server": ["coap://127.0.0.1:5683", 0],   # factory server: URI, is bootstrap
        "default_ssid": 123,
        "endpoint": "",                      # endpoint client name; "" = the IMEI (#LWM2MINJKEYS wins)
        "lifetime": 86400,
        "supported_binding": "U",            # /3/0/16: the binding modes a server may write to /1/x/7
        "busy_window": 0.5,                  # seconds after #LWM2MENA during which #LWM2M commands fail
    },
}


class ProfileError(ValueError):
    pass


def _copy(value: Any) -> Any:
    """A deep copy of profile data (dicts, lists, tuples of immutable scalars): what copy.deepcopy
    gives, several times faster (a fleet builds one profile per modem)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    if isinstance(value, (str, int, float, bool, bytes, type(None))):
        return value
    return copy.deepcopy(value)


def _merge(base: dict, over: dict, where: str = "") -> dict:
    out = _copy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v, f"{where}{k}.")
        else:
            out[k] = v
    return out


class Profile:
    def __init__(self, data: dict[str, Any] | None = None):
        self.data = _merge(DEFAULTS, data or {})
        ident = self.data["identity"]
        if not ident.get("serial"):
            ident["serial"] = ident["imei"]

    @classmethod
    def derived(cls, base: "Profile", overrides: dict[str, dict[str, Any]]) -> "Profile":
        """A profile equal to ``Profile`` of base's data with ``overrides`` (section -> keys) merged in,
        built cheaply for fleets: the sections it does not override are base's own dicts, shared (a
        module reads its profile and never changes it). An overridden section is a shallow copy."""
        prof = cls.__new__(cls)
        data = dict(base.data)
        for section, values in overrides.items():
            merged = dict(data.get(section) or {})
            for k, v in values.items():
                if isinstance(v, dict) and isinstance(merged.get(k), dict):
                    v = _merge(merged[k], v)
                merged[k] = v
            data[section] = merged
        ident = data["identity"]
        if not ident.get("serial"):
            data["identity"] = ident = dict(ident)
            ident["serial"] = ident["imei"]
        prof.data = data
        return prof

    @classmethod
    def load(cls, path: str | Path | None) -> "Profile":
        if path is None:
            return cls()
        try:
            with open(path, "rb") as fh:
                return cls(tomllib.load(fh))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ProfileError(f"cannot read profile {path}: {exc}") from exc

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.data[section]

    def ati(self, n: int) -> str | None:
        ident = self.data["identity"]
        text = ident["ati"].get(str(n))
        return None if text is None else text.format(**{k: v for k, v in ident.items() if isinstance(v, str)})
