"""Final result codes and the +CME ERROR table (numeric <-> verbose), per the guide's section 2.2.2.1."""
from __future__ import annotations

CME_TEXT: dict[int, str] = {
    0: "phone failure", 1: "no connection to phone", 2: "phone adaptor link reserved",
    3: "operation not allowed", 4: "operation not supported", 5: "PH-SIM PIN required",
    6: "PH-FSIM PIN required", 7: "PH-FSIM PUK required", 10: "SIM not inserted",
    11: "SIM PIN required", 12: "SIM PUK required", 13: "SIM failure", 14: "SIM busy",
    15: "SIM wrong", 16: "incorrect password", 17: "SIM PIN2 required", 18: "SIM PUK2 required",
    20: "memory full", 21: "invalid index", 22: "not found", 23: "memory failure",
    24: "text string too long", 25: "invalid characters in text string",
    26: "dial string too long", 27: "invalid characters in dial string",
    30: "no network service", 31: "network timeout",
    32: "network not allowed - emergency calls only",
    34: "numeric parameter instead of text parameter",
    35: "text parameter instead of numeric parameter",
    36: "numeric parameter out of bounds", 37: "text string too short",
    100: "unknown", 103: "Illegal MESSAGE", 106: "Illegal ME", 107: "GPRS services not allowed",
    111: "PLMN not allowed", 112: "Location area not allowed",
    113: "Roaming not allowed in this location area", 132: "service option not supported",
    133: "requested service option not subscribed",
    134: "service option temporarily out of order", 148: "unspecified GPRS error",
    149: "PDP authentication failure", 150: "invalid mobile class",
    550: "generic undocumented error", 551: "wrong state", 552: "wrong mode",
    553: "context already activated", 554: "stack already active", 555: "activation failed",
    556: "context not opened", 1102: "Unable to open the file", 1104: "Unable to read the nv file",
    1105: "Unable to write the nv file", 1114: "File name already exist",
}

# Verbose-only errors of the LwM2M agent (#LWM2MEXIST). The guide gives no numbers for them;
# under +CMEE=1 they are reported with the code below (a documented emulator choice).
AGENT_ERRORS: dict[str, int] = {
    "Invalid agent": 4, "Invalid URI": 4, "Invalid args": 4, "Internal Error": 100,
}

# ITU-T V.25ter basic result codes
RESULT_NUMERIC = {"OK": 0, "CONNECT": 1, "RING": 2, "NO CARRIER": 3, "ERROR": 4,
                  "NO DIALTONE": 6, "BUSY": 7, "NO ANSWER": 8}

# Common error choices, named once so every command family answers alike.
OPERATION_NOT_ALLOWED = 3
OPERATION_NOT_SUPPORTED = 4      # a parameter out of range or of the wrong kind
SIM_NOT_INSERTED = 10
SIM_PIN_REQUIRED = 11
MEMORY_FULL = 20                 # a growth limit or the NVM's size reached


class AtError(Exception):
    """Raised by a handler to end its command (and the rest of the line) with an error.

    AtError() -> plain ERROR whatever +CMEE says.
    AtError(10) -> +CME ERROR: 10 / SIM not inserted / ERROR, per +CMEE.
    AtError("Invalid URI") -> a verbose agent error.
    """

    def __init__(self, code: int | str | None = None):
        super().__init__(code)
        self.code = code

    def render(self, cmee: int) -> str:
        if self.code is None or cmee == 0:
            return "ERROR"
        if isinstance(self.code, str):
            return f"+CME ERROR: {self.code if cmee == 2 else AGENT_ERRORS.get(self.code, 100)}"
        if cmee == 1:
            return f"+CME ERROR: {self.code}"
        return f"+CME ERROR: {CME_TEXT.get(self.code, 'unknown')}"
