"""Omitted sub-parameters (issue 8, 2.6): one rule, declared once in the command registry.

A parameter-type command keeps the previous value of an omitted sub-parameter (guide 2.2); otherwise
the default of the command's parameter table applies; a parameter with neither is refused.
Over the real PTY, plus a unit test of the registry's rule.
"""
from emulator.at.errors import AtError
from emulator.at.parser import Param
from emulator.at.registry import Family, Int

OK = b"\r\nOK\r\n"
NOT_SUPPORTED = b"\r\n+CME ERROR: operation not supported\r\n"
NOT_ALLOWED = b"\r\n+CME ERROR: operation not allowed\r\n"


def test_agent_instance_takes_the_table_default(host):
    h = host
    assert h.cmd("AT+CMEE=2") == OK
    # the example: <agentInstanceID> has default 0 in the guide's table
    assert h.cmd("AT#LWM2MNFYACKURI=,1,3,0,9") == OK
    assert h.cmd("AT#LWM2MNFYACKURI=,2") == b'\r\n#LWM2MNFYACKURI: "/3/0/9"\r\n' + OK
    assert h.cmd("AT#LWM2MNFYACKURI=,0,3,0,9") == OK
    assert h.cmd("AT#LWM2MNEWINST=,3303,0") == OK
    assert h.cmd("AT#LWM2MEXIST=,3303,0") == OK
    assert h.cmd('AT#LWM2MINJKEYS=,1,"ep-omitted"') == OK
    assert h.cmd('AT#LWM2MSTS=,999,"coap://127.0.0.1:5999"') == OK
    assert h.cmd("AT#LWM2MFOTACFG=,1") == OK
    # #LWM2MR passes its arguments now and fails for the real reason: the agent is not enabled
    assert h.cmd("AT#LWM2MR=,3,0,0,0") == NOT_ALLOWED
    # #LWM2MMON <action> defaults to 0 (deactivate)
    assert h.cmd("AT#LWM2MMON=1,3") == OK
    assert h.cmd("AT#LWM2MMON=,3") == OK
    assert h.cmd("AT#LWM2MMON?") == OK


def test_parameters_without_default_are_still_refused(host):
    h = host
    assert h.cmd("AT+CMEE=2") == OK
    assert h.cmd("AT#LWM2MNFYACKURI=0,,3,0,9") == NOT_SUPPORTED        # <operation>: N/A
    assert h.cmd("AT#LWM2MNFYACKENA=,1") == NOT_SUPPORTED               # <agentInstanceID>: N/A here
    assert h.cmd("AT#LWM2MNEWINST=0,,0") == NOT_SUPPORTED               # <objectID>: N/A
    assert h.cmd("AT#LWM2MSET=0,3,0,,0,5") == NOT_SUPPORTED             # <resourceID>: N/A


def test_parameter_type_commands_keep_the_previous_value(host):
    h = host
    assert h.cmd("AT+CGEREP=1,1") == OK
    assert h.cmd("AT+CGEREP=2") == OK
    assert h.cmd("AT+CGEREP?") == b"\r\n+CGEREP: 2,1\r\n" + OK
    assert h.cmd("AT#SLED=3,20,30") == OK
    assert h.cmd("AT#SLED=,40") == OK
    assert h.cmd("AT#SLED?") == b"\r\n#SLED: 3,40,30\r\n" + OK
    assert h.cmd("AT#NITZ=,1") == OK                     # val keeps its factory value 1
    assert h.cmd("AT#NITZ?") == b"\r\n#NITZ: 1,1\r\n" + OK


class _Cmd:
    def __init__(self, *texts):
        self.params = [None if t is None else Param(t, False) for t in texts]


def test_registry_rule_previous_then_default_then_refuse():
    fam = Family()
    held = {"v": [7, None, None]}
    spec = fam.command("+X", Int("a", (0, 9)), Int("b", (0, 9), default=4), Int("c", (0, 9), optional=False),
                       keeps=lambda ctx: held["v"])
    assert spec.bind(_Cmd(None, None, "1"), ctx=object()) == [7, 4, 1]     # previous, then default
    assert spec.bind(_Cmd("2", "3", "1"), ctx=object()) == [2, 3, 1]
    try:
        spec.bind(_Cmd("2", "3", None), ctx=object())                       # neither: refused
    except AtError:
        pass
    else:
        raise AssertionError("an omitted mandatory parameter without default was accepted")
    held["v"] = [7, 8, 9]
    assert spec.bind(_Cmd(), ctx=object()) == [7, 8, 9]                       # AT+X= keeps them all
