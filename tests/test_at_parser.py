"""The AT line scanner (emulator/at/parser.py Parser) answers exactly as the reference grammar
(grammar/at.lark with Lark's LALR parser) on every line: the same commands, or an error for both."""
import random

import pytest

from emulator.at.parser import LarkParser, ParseError, Parser

FAST = Parser()
REFERENCE = LarkParser()

EDGES = [
    "", ";", ";;", "E0V1", "ATE", "S3=", "S3=13S4?", "S3=?", "S3=1?", "S", "s3?", "E00012", "&F1&W", "&1", "&",
    "+X", "+X=", "+X=,", "+X=,,", "+X=;E", "+X=E0", "+X=,E0", "+X=&F", "+X=+Y", "+X=+1", "+X=#Y", "+X=1#Y",
    "+X=S", "+X=s3=1", "+X=1,S3?", "+X=S3A", '+X="a"E0', '+X="a"+Y', '+X=a"b"', '+X=1,"a",', '+X="abc',
    '+X="a""b"', '+X=a,"b"c', "+X?E", "+X=?E", "+X?1", "+X=?=", "+X==?", "+X=,=?", "+x=1?", "e1+Cx", "+XE",
    "+X+Y", "=1", "+", "+=1", '+CGDCONT=1,"IP","internet"', "#LWM2MSET=1,3303,0,5700,0,23.4", '+X=""',
    '+X=,""', '+X="",', "+X=\x00\xff", "\xff", "+X=1;;+Y=?;S0=0;I3", "+X=S0", "+X=S0=", "+X=1,s", "Q0;V1",
]
ALPHABET = '+#$*@&;,="?=?0123456789aAeEsSzZ_\xff\x01 /'


def same(line: str) -> None:
    try:
        want = REFERENCE.parse(line)
    except ParseError:
        with pytest.raises(ParseError):
            FAST.parse(line)
        return
    assert FAST.parse(line) == want, line


@pytest.mark.parametrize("line", EDGES)
def test_edges(line):
    same(line)


def test_random_lines_from_the_grammars_alphabet():
    rng = random.Random(1212)
    for _ in range(20000):
        same("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24))))


def test_random_chains_of_plausible_commands():
    rng = random.Random(77)
    parts = ["+CGMI", "+CMEE=2", '+CGDCONT=1,"IP","x"', "E0", "S3?", "S7=", "#LWM2MR=0,3,0,0,0", "+CEREG?",
             "+CMEE=?", "&F", "I3", '"', ",", "=", "?", "S", "1", "a"]
    for _ in range(5000):
        same("".join(rng.choice(parts) + rng.choice(["", ";", ";", ";"]) for _ in range(rng.randint(1, 12))))


def test_random_latin1_bodies():
    rng = random.Random(5)
    for _ in range(2000):
        same("".join(chr(rng.randint(0, 0xff)) for _ in range(rng.choice([1, 5, 20, 80, 450]))))


def _strip_reference(line: str) -> str:
    out, quoted = [], False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        if ch == " " and not quoted:
            continue
        out.append(ch)
    return "".join(out)


def test_strip_spaces_keeps_quoted_spaces_only():
    from emulator.at.parser import strip_spaces
    rng = random.Random(9)
    for _ in range(5000):
        line = "".join(rng.choice(' "a,') for _ in range(rng.randint(0, 20)))
        assert strip_spaces(line) == _strip_reference(line), line
