"""Throw 20,000+ random and mutated lines at the real port: each gets a final result code."""
import random
import re

from emulator.at.parser import ParseError, Parser, strip_spaces

SEED_LINES = [
    "AT", "AT+CGMI", "AT+CMEE=2", "AT+CEREG=2", "AT+CEREG?", 'AT+CGDCONT=1,"IP","internet"',
    "AT+CGDCONT?", "AT#SGACT=1,1", "AT+CPIN?", "AT+COPS?", "AT+CSQ", "ATI4", "AT&V", "AT+CGMI;+CGMM",
    "AT+CMEE=?", "AT#M2MLIST=/XML/", "AT+CCLK?", 'AT+CCLK="26/01/02,03:04:05+04"', "AT+WS46=28",
    "AT#LWM2MSTAT", "AT#LWM2MENA?", "AT#LWM2MEXIST=0,3,0,0", "AT#LWM2MSET=1,3303,0,5700,0,23.4",
    "AT#LWM2MMON=1,3", "AT#LWM2MR=0,3,0,0,0", "ATS7?", "AT+CGPADDR=1", "AT#WS46?",
]
# commands that change the framing or the port's mode: a fuzz line containing one is regenerated
UNSAFE = re.compile(r"^(Q|V|E|Z|&F|&W|&Y|&P|S3|S4|S5|#M2MWRITE|#M2MREAD|#REBOOT|\+CFUN|\+CPIN|#LWM2MENA|#LWM2MSTS|#LWM2MINJKEYS)$")
PARSER = Parser()


def _mutate(rng, line: str) -> str:
    chars = list(line)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randint(0, len(chars))
        if op < 0.3 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op < 0.6:
            chars.insert(pos, rng.choice('",;=?+#$*@&/ 0123456789ABZaz\x00\x7f\xff'))
        elif op < 0.8:
            chars.insert(pos, str(rng.choice([10**30, -2**63, 65536, 4294967296, 99999999999999])))
        else:
            chars = chars[:pos]            # truncated chain
    return "".join(chars)


def _random_body(rng) -> str:
    n = rng.choice([1, 5, 20, 80, 450])
    return "".join(chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0, 0xff)])) for _ in range(n))


def _safe(body: str) -> bool:
    body = "".join(c for c in body if ord(c) >= 0x20)     # what the engine keeps of a line
    try:
        cmds = PARSER.parse(strip_spaces(body))
    except ParseError:
        return True
    return not any(UNSAFE.match(c.name) for c in cmds)


def generate(rng, count):
    out = []
    while len(out) < count:
        r = rng.random()
        if r < 0.5:
            line = _mutate(rng, rng.choice(SEED_LINES))
        elif r < 0.8:
            line = "AT" + _random_body(rng)
        elif r < 0.9:
            line = "AT+CGMI;" + ";".join(rng.choice(SEED_LINES)[2:] for _ in range(rng.randint(2, 80)))
        else:
            line = "AT" + rng.choice(['+CGDCONT=1,"IP', '#M2MLIST="/XML', '+CMEE=' + "9" * 40, '+X="' * 5])
        # the line must start with AT and must not contain the terminator or a backspace
        line = line.replace("\r", "").replace("\x08", "")
        if not line.upper().startswith("AT"):
            line = "AT" + line
        body = line[2:]
        # A/ anywhere in the prefix area would repeat: avoid a leading "/"
        if body.startswith(("/", "#/")) or not _safe(body):
            continue
        out.append(line.encode("latin-1"))
    return out


def test_fuzz_lines_all_get_final_result(host):
    rng = random.Random(20261125)
    lines = generate(rng, 20_000)
    host.echo = False
    host.write(b"ATE0\r")
    host.wait_for(rb"OK\r\n")
    finals = re.compile(rb"\r\n(OK|ERROR|\+CME ERROR: [^\r\n]*)\r\n$")
    for i, line in enumerate(lines):
        host.write(line + b"\r")
        try:
            host.read_until(lambda b: (m := finals.search(b)) and m.end(), timeout=10)
        except AssertionError as exc:
            raise AssertionError(f"line {i} {line!r} got no final result code: {exc}") from None
    assert host.cmd("AT") == b"\r\nOK\r\n"
    assert host.cmd("AT+CGMI") == b"\r\nTelit\r\n\r\nOK\r\n"
