"""Tests of the LwM2M 1.0 content formats (emulator.lwm2m.formats)."""

from __future__ import annotations

import base64
import json as stdjson
import math
import random
import struct

import pytest

from emulator.lwm2m import formats as F
from emulator.lwm2m.formats import FormatError, json as J, link as L, opaque as O, text as T, tlv
from emulator.lwm2m.formats.tlv import Entry, Kind

# ---------------------------------------------------------------------------
# models used by the examples

DEVICE_TYPES = {
    0: "string",  # Manufacturer
    1: "string",  # Model Number
    2: "string",  # Serial Number
    3: "string",  # Firmware Version
    4: "none",  # Reboot
    6: "integer",  # Available Power Sources (multi)
    7: "integer",  # Power Source Voltage (multi)
    8: "integer",  # Power Source Current (multi)
    9: "integer",  # Battery Level
    10: "integer",  # Memory Free
    11: "integer",  # Error Code (multi)
    13: "time",  # Current Time
    14: "string",  # UTC Offset
    16: "string",  # Supported Binding and Modes
}
ACL_TYPES = {0: "integer", 1: "integer", 2: "integer", 3: "integer"}
SERVER_TYPES = {0: "integer", 1: "integer", 2: "integer", 3: "integer", 5: "integer", 6: "boolean", 7: "string", 8: "none"}
OBJ66_TYPES = {0: "string", 1: "string", 2: "objlnk"}

DEVICE = {
    0: "Open Mobile Alliance",
    1: "Lightweight M2M Client",
    2: "345000123",
    3: "1.0",
    6: {0: 1, 1: 5},
    7: {0: 3800, 1: 5000},
    8: {0: 125, 1: 900},
    9: 100,
    10: 15,
    11: {0: 0},
    13: 0x5182428F,
    14: "+02:00",
    16: "U",
}

# LwM2M 1.0 §6.4.3.1, Read on /3/0 (single object instance), byte for byte
DEVICE_TLV = bytes.fromhex(
    # C8 00 14 "Open Mobile Alliance"  - Manufacturer (id 0), 8-bit length 0x14
    "C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65"
    # C8 01 16 "Lightweight M2M Client" - Model Number (id 1)
    "C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74"
    # C8 02 09 "345000123" - Serial Number (id 2)
    "C8 02 09 33 34 35 30 30 30 31 32 33"
    # C3 03 "1.0" - Firmware Version (id 3), length 3 in the type byte
    "C3 03 31 2E 30"
    # 86 06 - Available Power Sources (id 6), 6 bytes of resource instances
    "86 06"
    "41 00 01"  # [0] = 1 (DC power)
    "41 01 05"  # [1] = 5 (USB)
    # 88 07 08 - Power Source Voltage (id 7), 8-bit length 8
    "88 07 08"
    "42 00 0E D8"  # [0] = 3800 mV
    "42 01 13 88"  # [1] = 5000 mV
    # 87 08 - Power Source Current (id 8), 7 bytes
    "87 08"
    "41 00 7D"  # [0] = 125 mA
    "42 01 03 84"  # [1] = 900 mA
    "C1 09 64"  # Battery Level (id 9) = 100 %
    "C1 0A 0F"  # Memory Free (id 10) = 15 KB
    # 83 0B - Error Code (id 11), 3 bytes
    "83 0B 41 00 00"  # [0] = 0 (no error)
    "C4 0D 51 82 42 8F"  # Current Time (id 13) = 1367491215
    "C6 0E 2B 30 32 3A 30 30"  # UTC Offset (id 14) = "+02:00"
    "C1 10 55"  # Supported Binding and Modes (id 16) = "U"
)

# LwM2M 1.0 §6.4.3.2, Read on /2 (Access Control object, two instances)
ACL_OBJECT = {
    0: {0: 1, 1: 0, 2: {127: 7}, 3: 127},
    2: {0: 3, 1: 0, 2: {127: 7, 310: 1}, 3: 127},
}
ACL_TLV = bytes.fromhex(
    "08 00 0E"  # Object Instance 0, 14 bytes
    "C1 00 01"  # Object ID = 1
    "C1 01 00"  # Object Instance ID = 0
    "83 02 41 7F 07"  # ACL: [127] = 7
    "C1 03 7F"  # Access Control Owner = 127
    "08 02 12"  # Object Instance 2, 18 bytes
    "C1 00 03"  # Object ID = 3
    "C1 01 00"  # Object Instance ID = 0
    "87 02 41 7F 07 61 01 36 01"  # ACL (7 bytes): [127] = 7, [310] = 1 (16-bit id 0x0136)
    "C1 03 7F"  # Access Control Owner = 127
)

# LwM2M 1.0 §6.4.3.2, Read on /1 (Server object, one instance)
SERVER_OBJECT = {0: {0: 1, 1: 86400, 6: True, 7: "U"}}
SERVER_TLV = bytes.fromhex(
    "08 00 0F"  # Object Instance 0, 15 bytes
    "C1 00 01"  # Short Server ID = 1
    "C4 01 00 01 51 80"  # Lifetime = 86400
    "C1 06 01"  # Notification Storing = true
    "C1 07 55"  # Binding = "U"
)

# LwM2M 1.0 §6.4.3.3, Read on /66 (object instances containing object links)
OBJ66 = {
    0: {0: "myService 1", 1: "Internet.15.234", 2: (67, 0)},
    1: {0: "myService 2", 1: "Internet.15.235", 2: (0xFFFF, 0xFFFF)},
}
OBJ66_TLV = bytes.fromhex(
    "08 00 26"
    "C8 00 0B 6D 79 53 65 72 76 69 63 65 20 31"
    "C8 01 0F 49 6E 74 65 72 6E 65 74 2E 31 35 2E 32 33 34"
    "C4 02 00 43 00 00"
    "08 01 26"
    "C8 00 0B 6D 79 53 65 72 76 69 63 65 20 32"
    "C8 01 0F 49 6E 74 65 72 6E 65 74 2E 31 35 2E 32 33 35"
    "C4 02 FF FF FF FF"
)

# LwM2M 1.0 §6.4.4, JSON Read on /3/0
DEVICE_JSON = {
    "bn": "/3/0/",
    "e": [
        {"n": "0", "sv": "Open Mobile Alliance"},
        {"n": "1", "sv": "Lightweight M2M Client"},
        {"n": "2", "sv": "345000123"},
        {"n": "3", "sv": "1.0"},
        {"n": "6/0", "v": 1},
        {"n": "6/1", "v": 5},
        {"n": "7/0", "v": 3800},
        {"n": "7/1", "v": 5000},
        {"n": "8/0", "v": 125},
        {"n": "8/1", "v": 900},
        {"n": "9", "v": 100},
        {"n": "10", "v": 15},
        {"n": "11/0", "v": 0},
        {"n": "13", "v": 1367491215},
        {"n": "14", "sv": "+02:00"},
        {"n": "16", "sv": "U"},
    ],
}


# ---------------------------------------------------------------------------
# package


def test_content_format_numbers():
    assert (F.TEXT, F.LINK, F.OPAQUE, F.TLV, F.JSON) == (0, 40, 42, 11542, 11543)
    assert (F.OLD_TEXT, F.OLD_TLV, F.OLD_JSON) == (1541, 1542, 1543)
    assert F.normalize(1541) == 0
    assert F.normalize(1542) == 11542
    assert F.normalize(1543) == 11543
    for cf in (0, 40, 42, 11542, 11543, 60, 112):
        assert F.normalize(cf) == cf
    assert F.media_type(1542) == "application/vnd.oma.lwm2m+tlv"
    assert issubclass(FormatError, ValueError)


# ---------------------------------------------------------------------------
# TLV: spec examples


def test_tlv_spec_device_instance_encode():
    assert tlv.encode_instance(DEVICE, DEVICE_TYPES) == DEVICE_TLV


def test_tlv_spec_device_instance_decode():
    assert tlv.decode_instance(DEVICE_TLV, DEVICE_TYPES) == DEVICE
    assert tlv.decode_instance(DEVICE_TLV, DEVICE_TYPES.get, 0) == DEVICE


def test_tlv_spec_device_instance_wrapped():
    wrapped = tlv.encode_instance(DEVICE, DEVICE_TYPES, instance_id=0)
    assert len(DEVICE_TLV) == 0x79
    assert wrapped == bytes([0x08, 0x00, 0x79]) + DEVICE_TLV  # 8-bit length field
    assert tlv.decode_instance(wrapped, DEVICE_TYPES, 0) == DEVICE
    with pytest.raises(FormatError):
        tlv.decode_instance(wrapped, DEVICE_TYPES, 1)
    assert tlv.encode_object({0: DEVICE}, DEVICE_TYPES) == wrapped
    assert tlv.decode_object(wrapped, DEVICE_TYPES) == {0: DEVICE}


def test_tlv_spec_low_level_entries():
    entries = tlv.decode_entries(DEVICE_TLV)
    assert [e.id for e in entries] == [0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 13, 14, 16]
    assert entries[4] == Entry(Kind.MULTIPLE_RESOURCE, 6, [Entry(Kind.RESOURCE_INSTANCE, 0, b"\x01"), Entry(Kind.RESOURCE_INSTANCE, 1, b"\x05")])
    assert entries[0] == Entry(Kind.RESOURCE, 0, b"Open Mobile Alliance")
    assert tlv.encode_entries(entries) == DEVICE_TLV


def test_tlv_spec_single_resources():
    # Read /3/0/0 and /3/0/9: one resource TLV each
    assert tlv.encode_resource(0, "Open Mobile Alliance", "string") == DEVICE_TLV[:23]
    assert tlv.encode_resource(9, 100, "integer") == bytes.fromhex("C1 09 64")
    assert tlv.encode_resource(13, 0x5182428F, "time") == bytes.fromhex("C4 0D 51 82 42 8F")
    assert tlv.decode_resource(bytes.fromhex("C1 09 64"), 9, "integer") == 100
    assert tlv.decode_resource(DEVICE_TLV[:23], 0, "string") == "Open Mobile Alliance"
    with pytest.raises(FormatError):  # id conflict with the path
        tlv.decode_resource(bytes.fromhex("C1 09 64"), 10, "integer")


def test_tlv_spec_multiple_resource():
    # Read /3/0/6: one multiple-resource TLV
    payload = bytes.fromhex("86 06 41 00 01 41 01 05")
    assert tlv.encode_resource(6, {0: 1, 1: 5}, "integer") == payload
    assert tlv.decode_resource(payload, 6, "integer") == {0: 1, 1: 5}
    # bare resource instances are accepted for a write on the resource
    assert tlv.decode_resource(bytes.fromhex("41 00 01 41 01 05"), 6, "integer") == {0: 1, 1: 5}
    assert tlv.decode_resource(b"", 6, "integer") == {}


def test_tlv_spec_acl_object():
    assert tlv.encode_object(ACL_OBJECT, ACL_TYPES) == ACL_TLV
    assert tlv.decode_object(ACL_TLV, ACL_TYPES) == ACL_OBJECT


def test_tlv_spec_server_object():
    assert tlv.encode_object(SERVER_OBJECT, SERVER_TYPES) == SERVER_TLV
    assert tlv.decode_object(SERVER_TLV, SERVER_TYPES) == SERVER_OBJECT
    # the same payload is a valid write on /1/0 and a create on /1
    assert tlv.decode_instance(SERVER_TLV, SERVER_TYPES, 0) == SERVER_OBJECT[0]
    assert tlv.decode_create(SERVER_TLV, SERVER_TYPES) == [(0, SERVER_OBJECT[0])]


def test_tlv_spec_object_links():
    assert tlv.encode_object(OBJ66, OBJ66_TYPES) == OBJ66_TLV
    assert tlv.decode_object(OBJ66_TLV, OBJ66_TYPES) == OBJ66


# ---------------------------------------------------------------------------
# TLV: details


def test_tlv_integer_sizes():
    cases = {
        0: "00",
        127: "7F",
        -128: "80",
        128: "0080",
        -129: "FF7F",
        32767: "7FFF",
        32768: "00008000",
        -(2**31): "80000000",
        2**31: "0000000080000000",
        2**63 - 1: "7FFFFFFFFFFFFFFF",
        -(2**63): "8000000000000000",
    }
    for v, hx in cases.items():
        assert tlv.encode_value("integer", v) == bytes.fromhex(hx), v
        assert tlv.decode_value("integer", bytes.fromhex(hx)) == v
    for bad in (2**63, -(2**63) - 1, True, 1.0, "1"):
        with pytest.raises(FormatError):
            tlv.encode_value("integer", bad)
    for n in (0, 3, 5, 6, 7, 9, 16):
        with pytest.raises(FormatError):
            tlv.decode_value("integer", b"\x01" * n)


def test_tlv_float_width():
    # always 8 bytes on output, 4 or 8 accepted on input
    assert tlv.encode_value("float", 1.5) == struct.pack(">d", 1.5)
    assert tlv.encode_value("float", 3) == struct.pack(">d", 3.0)
    assert tlv.decode_value("float", struct.pack(">f", 1.5)) == 1.5
    assert tlv.decode_value("float", struct.pack(">d", 0.1)) == 0.1
    for n in (0, 1, 2, 3, 5, 7, 9):
        with pytest.raises(FormatError):
            tlv.decode_value("float", b"\x00" * n)


def test_tlv_boolean_objlnk_string():
    assert tlv.encode_value("boolean", True) == b"\x01"
    assert tlv.decode_value("boolean", b"\x00") is False
    for bad in (b"", b"\x02", b"\x00\x01", b"\xff"):
        with pytest.raises(FormatError):
            tlv.decode_value("boolean", bad)
    assert tlv.encode_value("objlnk", (3, 0)) == b"\x00\x03\x00\x00"
    assert tlv.decode_value("objlnk", b"\xff\xff\xff\xff") == (65535, 65535)
    with pytest.raises(FormatError):
        tlv.decode_value("objlnk", b"\x00\x03\x00")
    with pytest.raises(FormatError):
        tlv.encode_value("objlnk", (65536, 0))
    with pytest.raises(FormatError):
        tlv.decode_value("string", b"\xc3\x28")
    with pytest.raises(FormatError):
        tlv.decode_value("none", b"")


def test_tlv_header_forms():
    # 16-bit identifier
    assert tlv.encode_resource(300, 1, "integer") == bytes.fromhex("E1 01 2C 01")
    assert tlv.decode_entries(bytes.fromhex("E1 01 2C 01")) == [Entry(Kind.RESOURCE, 300, b"\x01")]
    # 8/16/24-bit length fields
    for n, hdr in ((7, "C7 00"), (8, "C8 00 08"), (255, "C8 00 FF"), (256, "D0 00 01 00"), (65535, "D0 00 FF FF"), (65536, "D8 00 01 00 00"), (70000, "D8 00 01 11 70")):
        data = tlv.encode_resource(0, b"x" * n, "opaque")
        assert data.startswith(bytes.fromhex(hdr)), n
        assert len(data) == len(bytes.fromhex(hdr)) + n
        assert tlv.decode_resource(data, 0, "opaque") == b"x" * n
    # non-minimal forms are accepted: 16-bit id < 256, length field for a short value
    assert tlv.decode_entries(bytes.fromhex("E8 00 05 01 07")) == [Entry(Kind.RESOURCE, 5, b"\x07")]
    with pytest.raises(FormatError):
        tlv.encode_resource(0, b"x" * (1 << 24), "opaque")


@pytest.mark.parametrize(
    "hexdata",
    [
        "C1",  # no identifier
        "E1 00",  # truncated 16-bit identifier
        "C8 00",  # missing 8-bit length
        "D0 00 01",  # truncated 16-bit length
        "C1 00",  # missing value byte
        "C8 00 05 41 42",  # length beyond payload
        "86 06 41 00 01",  # multiple resource shorter than declared
        "86 06 C1 00 01 41 01 05",  # resource (not resource instance) inside multiple resource
        "08 00 03 41 00 01",  # resource instance directly inside object instance
        "08 00 05 08 00 02 C1 00",  # object instance nested in object instance
        "82 06 41 00",  # truncated child inside container
    ],
)
def test_tlv_malformed(hexdata):
    data = bytes.fromhex(hexdata)
    with pytest.raises(FormatError):
        tlv.decode_entries(data)


def test_tlv_structure_errors():
    types = DEVICE_TYPES
    with pytest.raises(FormatError):  # duplicate resource
        tlv.decode_instance(bytes.fromhex("C1 09 64 C1 09 63"), types)
    with pytest.raises(FormatError):  # duplicate resource instance
        tlv.decode_resource(bytes.fromhex("86 06 41 00 01 41 00 02"), 6, "integer")
    with pytest.raises(FormatError):  # unknown resource 99
        tlv.decode_instance(bytes.fromhex("C1 63 01"), types)
    assert tlv.decode_instance(bytes.fromhex("C1 63 01 83 62 41 00 07"), types, keep_unknown=True) == {99: b"\x01", 98: {0: b"\x07"}}
    with pytest.raises(FormatError):  # executable resource carries no value
        tlv.decode_instance(bytes.fromhex("C0 04"), types)
    with pytest.raises(FormatError):  # two object instances in a write to /o/i
        tlv.decode_instance(bytes.fromhex("08 00 03 C1 09 64 08 01 03 C1 09 64"), types)
    with pytest.raises(FormatError):  # bare resources where object instances are needed
        tlv.decode_object(bytes.fromhex("C1 09 64"), types)
    with pytest.raises(FormatError):  # duplicate instance
        tlv.decode_object(bytes.fromhex("08 00 03 C1 09 64 08 00 03 C1 09 64"), types)
    with pytest.raises(FormatError):  # mixed create payload
        tlv.decode_create(bytes.fromhex("08 00 03 C1 09 64 C1 0A 0F"), types)
    with pytest.raises(FormatError):  # wrong value size for the type
        tlv.decode_instance(bytes.fromhex("C3 09 00 00 01"), types)


def test_tlv_create_forms():
    bare = tlv.encode_instance({0: 5, 1: 86400}, SERVER_TYPES)
    assert tlv.decode_create(bare, SERVER_TYPES) == [(None, {0: 5, 1: 86400})]
    wrapped = tlv.encode_instance({0: 5, 1: 86400}, SERVER_TYPES, instance_id=3)
    assert tlv.decode_create(wrapped, SERVER_TYPES) == [(3, {0: 5, 1: 86400})]
    two = tlv.encode_object({1: {0: 5}, 2: {0: 6}}, SERVER_TYPES)
    assert tlv.decode_create(two, SERVER_TYPES) == [(1, {0: 5}), (2, {0: 6})]
    assert tlv.decode_create(b"", SERVER_TYPES) == [(None, {})]


def test_tlv_encode_entries_validation():
    with pytest.raises(FormatError):
        tlv.encode_entries([Entry(Kind.MULTIPLE_RESOURCE, 1, [Entry(Kind.RESOURCE, 0, b"")])])
    with pytest.raises(FormatError):
        tlv.encode_entries([Entry(Kind.RESOURCE, 1, [])])
    with pytest.raises(FormatError):
        tlv.encode_entries([Entry(Kind.RESOURCE, 65536, b"")])
    with pytest.raises(FormatError):
        tlv.encode_entries([Entry(7, 1, b"")])


def test_tlv_type_inference():
    inst = {0: "x", 1: 5, 2: 1.5, 3: True, 4: b"\x00", 5: (1, 2), 6: {0: 1, 1: 2}}
    data = tlv.encode_instance(inst)
    types = {0: "string", 1: "integer", 2: "float", 3: "boolean", 4: "opaque", 5: "objlnk", 6: "integer"}
    assert tlv.decode_instance(data, types) == inst


# ---------------------------------------------------------------------------
# JSON


def test_json_spec_device_instance():
    data = J.encode_instance(3, 0, DEVICE, DEVICE_TYPES)
    assert stdjson.loads(data) == DEVICE_JSON
    assert data == stdjson.dumps(DEVICE_JSON, separators=(",", ":")).encode()
    assert J.decode_instance(data, 3, 0, DEVICE_TYPES) == DEVICE


def test_json_spec_text_decodes():
    # the example exactly as laid out in the specification (whitespace and all)
    spec_text = b"""{"bn":"/3/0/",
 "e":[
 {"n":"0","sv":"Open Mobile Alliance"},
 {"n":"1","sv":"Lightweight M2M Client"},
 {"n":"2","sv":"345000123"},
 {"n":"3","sv":"1.0"},
 {"n":"6/0","v":1},
 {"n":"6/1","v":5},
 {"n":"7/0","v":3800},
 {"n":"7/1","v":5000},
 {"n":"8/0","v":125},
 {"n":"8/1","v":900},
 {"n":"9","v":100},
 {"n":"10","v":15},
 {"n":"11/0","v":0},
 {"n":"13","v":1367491215},
 {"n":"14","sv":"+02:00"},
 {"n":"16","sv":"U"}]
}"""
    assert J.decode_instance(spec_text, 3, 0, DEVICE_TYPES) == DEVICE


def test_json_resource_and_object_base_names():
    assert stdjson.loads(J.encode_resource(3, 0, 0, "Open Mobile Alliance", "string")) == {"bn": "/3/0/0", "e": [{"sv": "Open Mobile Alliance"}]}
    assert stdjson.loads(J.encode_resource(3, 0, 6, {0: 1, 1: 5}, "integer")) == {"bn": "/3/0/6/", "e": [{"n": "0", "v": 1}, {"n": "1", "v": 5}]}
    obj = stdjson.loads(J.encode_object(66, OBJ66, OBJ66_TYPES))
    assert obj["bn"] == "/66/"
    assert obj["e"][:3] == [{"n": "0/0", "sv": "myService 1"}, {"n": "0/1", "sv": "Internet.15.234"}, {"n": "0/2", "ov": "67:0"}]
    assert obj["e"][5] == {"n": "1/2", "ov": "65535:65535"}
    assert J.decode_object(J.encode_object(66, OBJ66, OBJ66_TYPES), 66, OBJ66_TYPES) == OBJ66
    x = stdjson.loads(J.encode_instance(1, 0, {6: True, 5: b"\x01\x02\xff", 2: 1.5}, {6: "boolean", 5: "opaque", 2: "float"}))
    assert x == {"bn": "/1/0/", "e": [{"n": "2", "v": 1.5}, {"n": "5", "sv": "AQL/"}, {"n": "6", "bv": True}]}


def test_json_decode_variants():
    types = SERVER_TYPES
    # no bn: names relative to the request path
    assert J.decode_instance(b'{"e":[{"n":"1","v":60},{"n":"7","sv":"UQ"}]}', 1, 0, types) == {1: 60, 7: "UQ"}
    # bn pointing to the instance / to the object / to the root
    assert J.decode_instance(b'{"bn":"/1/0/","e":[{"n":"6","bv":false}]}', 1, 0, types) == {6: False}
    assert J.decode_instance(b'{"bn":"/1/","e":[{"n":"0/6","bv":false}]}', 1, 0, types) == {6: False}
    assert J.decode_instance(b'{"bn":"/","e":[{"n":"1/0/6","bv":false}]}', 1, 0, types) == {6: False}
    # absolute names
    assert J.decode_instance(b'{"e":[{"n":"/1/0/1","v":60.0,"t":0}],"bt":5}', 1, 0, types) == {1: 60}
    # single resource: bn is the resource itself, no n
    assert J.decode_resource(b'{"bn":"/1/0/1","e":[{"v":300}]}', 1, 0, 1, "integer") == 300
    assert J.decode_resource(b'{"e":[{"v":300}]}', 1, 0, 1, "integer") == 300
    assert J.decode_resource(b'{"bn":"/3/0/6/","e":[{"n":"0","v":1},{"n":"1","v":5}]}', 3, 0, 6, "integer") == {0: 1, 1: 5}
    assert J.decode_resource(b'{"bn":"/3/0/6","e":[]}', 3, 0, 6, "integer") == {}
    # objlnk: "ov" per the spec, "sv" as Leshan writes it
    assert J.decode_resource(b'{"e":[{"ov":"3:0"}]}', 66, 0, 2, "objlnk") == (3, 0)
    assert J.decode_resource(b'{"e":[{"sv":"3:0"}]}', 66, 0, 2, "objlnk") == (3, 0)
    # create carries instance ids
    assert J.decode_create(b'{"bn":"/1/","e":[{"n":"4/0","v":7}]}', 1, types) == [(4, {0: 7})]


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b"{}",
        b'{"e":{}}',
        b'{"e":[1]}',
        b'{"e":[{"n":"0","v":1}],"x":1}',  # unknown root key
        b'{"e":[{"n":"0","v":1,"q":2}]}',  # unknown entry key
        b'{"e":[{"n":"0"}]}',  # no value
        b'{"e":[{"n":"0","v":1,"sv":"1"}]}',  # two values
        b'{"e":[{"n":"0","sv":"1"}]}',  # integer resource given a string
        b'{"e":[{"n":"0","v":1.5}]}',  # non integral integer
        b'{"e":[{"n":"0","v":true}]}',  # boolean is not a number
        b'{"e":[{"n":"0","v":9223372036854775808}]}',  # beyond int64
        b'{"e":[{"n":"0","v":NaN}]}',
        b'{"e":[{"n":"0","v":Infinity}]}',
        b'{"e":[{"n":"6","v":1}]}',  # boolean resource given a number
        b'{"e":[{"n":"7","v":1}]}',  # string resource given a number
        b'{"e":[{"n":"0","v":1},{"n":"0","v":2}]}',  # duplicate resource
        b'{"e":[{"n":"0","v":1}],"e":[]}',  # duplicate key
        b'{"e":[{"n":"99","v":1}]}',  # unknown resource
        b'{"e":[{"n":"8","v":1}]}',  # executable
        b'{"bn":"/2/0/","e":[{"n":"0","v":1}]}',  # other object
        b'{"bn":"/1/1/","e":[{"n":"0","v":1}]}',  # other instance
        b'{"bn":"/1/0/","e":[{"n":"x","v":1}]}',  # bad path
        b'{"bn":"/1/0/","e":[{"n":"70000","v":1}]}',  # id out of range
        b'{"bn":"/1/0/","e":[{"n":"0/1/2","v":1}]}',  # too deep
        b'{"bn":"/1/0","e":[{"v":1}]}',  # instance path, not a resource
        b'{"bn":5,"e":[]}',
        b'{"e":[{"n":5,"v":1}]}',
        b'{"e":[{"n":"0","v":1,"t":"x"}]}',
        b'{"e":[],"bt":"x"}',
        b'{"e":[{"n":"0","v":1},{"n":"0/1","v":2}]}',  # single and multiple
        b'{"e":[{"n":"0/1","v":1},{"n":"0","v":2}]}',
        b'\xff{"e":[]}',
        b'{"e":[' * 5000,
        b"[" * 100000 + b"]" * 100000,
        b'{"e":[{"n":"0","v":' + b"9" * 5000 + b"}]}",
        b'{"e":[{"n":"0","v":1e' + b"9" * 5000 + b"}]}",
    ],
)
def test_json_malformed(payload):
    with pytest.raises(FormatError):
        J.decode_instance(payload, 1, 0, SERVER_TYPES)


def test_json_type_errors():
    with pytest.raises(FormatError):
        J.decode_resource(b'{"e":[{"sv":"!!!"}]}', 3, 0, 1, "opaque")
    with pytest.raises(FormatError):
        J.decode_resource(b'{"e":[{"ov":"3-0"}]}', 66, 0, 2, "objlnk")
    with pytest.raises(FormatError):
        J.decode_resource(b'{"e":[{"ov":"3:70000"}]}', 66, 0, 2, "objlnk")
    with pytest.raises(FormatError):
        J.decode_resource(b'{"e":[{"v":1e400}]}', 3, 0, 1, "float")
    with pytest.raises(FormatError):
        J.encode_resource(3, 0, 1, math.nan, "float")
    with pytest.raises(FormatError):
        J.encode_resource(3, 0, 1, 5, "string")
    with pytest.raises(FormatError):
        J.encode_resource(3, 0, 4, None, "none")


# ---------------------------------------------------------------------------
# text and opaque


def test_text_encodings():
    assert T.encode_value("string", "Open Mobile Alliance") == b"Open Mobile Alliance"
    assert T.encode_value("string", "h\u00e9") == "h\u00e9".encode()
    assert T.encode_value("integer", -42) == b"-42"
    assert T.encode_value("time", 1367491215) == b"1367491215"
    assert T.encode_value("boolean", True) == b"1"
    assert T.encode_value("boolean", False) == b"0"
    assert T.encode_value("objlnk", (3, 0)) == b"3:0"
    assert T.encode_value("float", 23.4) == b"23.4"
    assert T.encode_value("float", 23.0) == b"23.0"
    assert T.encode_value("float", 23) == b"23.0"
    assert T.encode_value("float", -0.5) == b"-0.5"
    assert T.encode_value("float", 1e16) == b"10000000000000000.0"
    assert T.encode_value("float", 1e-5) == b"0.00001"
    assert T.encode_value("float", 0.1) == b"0.1"
    for bad_type, bad in (("opaque", b"x"), ("none", None), ("float", math.inf), ("float", math.nan), ("integer", True), ("integer", 2**63), ("string", b"x"), ("boolean", 1)):
        with pytest.raises(FormatError):
            T.encode_value(bad_type, bad)


def test_text_decodings():
    assert T.decode_value("integer", b"-42") == -42
    assert T.decode_value("integer", b"+7") == 7
    assert T.decode_value("integer", b"9223372036854775807") == 2**63 - 1
    assert T.decode_value("integer", b"-9223372036854775808") == -(2**63)
    assert T.decode_value("float", b"23.4") == 23.4
    assert T.decode_value("float", b"23") == 23.0
    assert T.decode_value("float", b"2.3E1") == 23.0
    assert T.decode_value("float", b"-.5") == -0.5
    assert T.decode_value("boolean", b"1") is True
    assert T.decode_value("boolean", b"0") is False
    assert T.decode_value("objlnk", b"65535:65535") == (65535, 65535)
    assert T.decode_value("time", b"1367491215") == 1367491215
    assert T.decode_value("string", b"") == ""
    # leading zeros are fine, however many (and never reach int()'s digit limit)
    assert T.decode_value("integer", b"0" * 5000 + b"1") == 1
    assert T.decode_value("time", b"-" + b"0" * 5000 + b"7") == -7


@pytest.mark.parametrize(
    "type_,payload",
    [
        ("integer", b"1.5"),
        ("integer", b""),
        ("integer", b" 1"),
        ("integer", b"1 "),
        ("integer", b"1_000"),
        ("integer", b"0x10"),
        ("integer", "\u0661".encode()),  # arabic-indic digit one
        ("integer", b"9223372036854775808"),
        ("integer", b"-9223372036854775809"),
        ("integer", b"1" * 5000),
        ("time", b"2013-05-02T10:40:15Z"),
        ("float", b"nan"),
        ("float", b"inf"),
        ("float", b"1e999"),
        ("float", b"1,5"),
        ("float", b""),
        ("float", b"."),
        ("boolean", b"2"),
        ("boolean", b"true"),
        ("boolean", b""),
        ("boolean", b"01"),
        ("objlnk", b"3"),
        ("objlnk", b"3:"),
        ("objlnk", b"3:65536"),
        ("objlnk", b"-1:0"),
        ("string", b"\xc3\x28"),
        ("string", b"\xed\xa0\x80"),  # UTF-8 encoded surrogate
        ("opaque", b"x"),
        ("none", b""),
    ],
)
def test_text_strict(type_, payload):
    with pytest.raises(FormatError):
        T.decode_value(type_, payload)


def test_opaque():
    assert O.encode_value("opaque", b"\x00\x01") == b"\x00\x01"
    assert O.encode_value("opaque", bytearray(b"ab")) == b"ab"
    assert O.decode_value("opaque", b"\xff") == b"\xff"
    with pytest.raises(FormatError):
        O.encode_value("string", "x")
    with pytest.raises(FormatError):
        O.decode_value("integer", b"\x01")
    with pytest.raises(FormatError):
        O.encode_value("opaque", "not bytes")


# ---------------------------------------------------------------------------
# round trips of every type through every format

VALUES = {
    "string": ["", "Open Mobile Alliance", "h\u00e9llo \u2713 \U0001d11e", "a,b;c\"d\\", "x" * 300],
    "integer": [0, 1, -1, 127, 128, -128, -129, 32767, 32768, -32769, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63)],
    "time": [0, 1367491215, -1, 2**40],
    "float": [0.0, -0.0, 1.5, -23.4, 0.1, 1e16, 1e-5, 1.7976931348623157e308, 5e-324, 3.0],
    "boolean": [True, False],
    "opaque": [b"", b"\x00", b"\x00\xff" * 200, bytes(range(256))],
    "objlnk": [(0, 0), (3, 0), (65535, 65535), (1, 65534)],
}


@pytest.mark.parametrize("type_", sorted(VALUES))
def test_round_trip_every_type(type_):
    for v in VALUES[type_]:
        # TLV value / resource / multiple resource / instance
        assert tlv.decode_value(type_, tlv.encode_value(type_, v)) == v
        assert tlv.decode_resource(tlv.encode_resource(5, v, type_), 5, type_) == v
        assert tlv.decode_resource(tlv.encode_resource(500, {0: v, 300: v}, type_), 500, type_) == {0: v, 300: v}
        inst = {1: v, 2: {0: v, 1: v}}
        assert tlv.decode_instance(tlv.encode_instance(inst, {1: type_, 2: type_}), {1: type_, 2: type_}) == inst
        # JSON
        assert J.decode_resource(J.encode_resource(9, 8, 7, v, type_), 9, 8, 7, type_) == v
        assert J.decode_instance(J.encode_instance(9, 8, inst, {1: type_, 2: type_}), 9, 8, {1: type_, 2: type_}) == inst
        # text (not for opaque) / opaque
        if type_ == "opaque":
            assert O.decode_value(type_, O.encode_value(type_, v)) == v
        else:
            assert T.decode_value(type_, T.encode_value(type_, v)) == v
        # sign of zero survives
        if type_ == "float":
            assert math.copysign(1, tlv.decode_value("float", tlv.encode_value("float", v))) == math.copysign(1, v)
            assert math.copysign(1, T.decode_value("float", T.encode_value("float", v))) == math.copysign(1, v)


def test_dispatch():
    types = DEVICE_TYPES
    assert F.encode(F.TLV, (3, 0), DEVICE, types) == DEVICE_TLV
    assert F.decode(F.OLD_TLV, (3, 0), DEVICE_TLV, types) == DEVICE
    assert F.encode(F.TEXT, (3, 0, 9), 100, types) == b"100"
    assert F.decode(F.OLD_TEXT, (3, 0, 9), b"100", types) == 100
    assert F.decode(F.JSON, (3, 0), J.encode_instance(3, 0, DEVICE, types), types) == DEVICE
    assert F.decode(F.TLV, (3,), tlv.encode_object({0: DEVICE}, types), types) == {0: DEVICE}
    assert F.decode(F.TLV, (3, 0, 6), bytes.fromhex("86 06 41 00 01 41 01 05"), types) == {0: 1, 1: 5}
    assert F.encode(F.OPAQUE, (5, 0, 0), b"\x01", {0: "opaque"}) == b"\x01"
    assert F.decode_create(F.TLV, 1, SERVER_TLV, SERVER_TYPES) == [(0, SERVER_OBJECT[0])]
    with pytest.raises(FormatError):
        F.encode(F.TEXT, (3, 0), DEVICE, types)
    with pytest.raises(FormatError):
        F.encode(F.LINK, (3, 0, 0), "x", types)
    with pytest.raises(FormatError):
        F.decode(F.TEXT, (3, 0, 99), b"1", types)


# ---------------------------------------------------------------------------
# link format


def test_registration_links():
    objs = {0: [0], 1: [0], 3: [0], 5: []}
    assert L.registration_links(objs) == "</1/0>,</3/0>,</5>"
    assert L.registration_links(objs, root=True) == '</>;rt="oma.lwm2m",</1/0>,</3/0>,</5>'
    assert L.registration_links(objs, content_format=11543) == '</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</5>'
    assert L.registration_links(objs, alternate_path="/lwm2m") == '</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,</lwm2m/3/0>,</lwm2m/5>'
    assert L.registration_links(objs, include_security=True).startswith("</0/0>,")
    versions = {3: "1.0", 5: "2.0", 3303: "1.1"}.get
    assert L.registration_links({1: [0, 1], 3: [0], 5: [], 3303: [0]}, versions) == "</1/0>,</1/1>,</3/0>,</5>;ver=2.0,</3303>;ver=1.1,</3303/0>"
    assert L.registration_links({5: []}, versions, quote_version=True) == '</5>;ver="2.0"'
    with pytest.raises(FormatError):
        L.registration_links({5: []}, lambda o: "two")


def test_discover_links():
    instances = {0: [0, 1, 2, 3, 4, 6, 7, 8, 11, 16]}
    attrs = {(3,): {"pmin": 10}, (3, 0): {"pmax": 60}, (3, 0, 7): {"gt": 50, "lt": 42.2}}.get
    dims = {(3, 0, 6): 2, (3, 0, 7): 2, (3, 0, 8): 2, (3, 0, 11): 1}.get
    assert L.discover_links((3, 0, 7), instances, attributes=attrs, dim=dims) == "</3/0/7>;dim=2;pmin=10;pmax=60;gt=50;lt=42.2"
    assert L.discover_links((3, 0, 7), instances, attributes=attrs, dim=dims, inherit=False) == "</3/0/7>;dim=2;gt=50;lt=42.2"
    assert L.discover_links((3, 0, 1), instances) == "</3/0/1>"
    inst = L.discover_links((3, 0), instances, attributes=attrs, dim=dims)
    assert inst == (
        "</3/0>;pmax=60,</3/0/0>,</3/0/1>,</3/0/2>,</3/0/3>,</3/0/4>,</3/0/6>;dim=2,"
        "</3/0/7>;dim=2;gt=50;lt=42.2,</3/0/8>;dim=2,</3/0/11>;dim=1,</3/0/16>"
    )
    obj = L.discover_links((3,), instances, attributes=attrs, dim=dims, version="1.1")
    assert obj == "</3>;ver=1.1;pmin=10," + inst
    assert L.discover_links((5,), {}) == "</5>"
    with pytest.raises(FormatError):
        L.discover_links((3, 1), instances)
    with pytest.raises(FormatError):
        L.discover_links((3, 0, 5), instances)


def test_parse_links():
    text = '</>;rt="oma.lwm2m";ct=11543, </1/0>,</3/0>;ver=1.1 ,</5>;ver="2.0";obs,,</x>;title="a,b;\\"c\\"";Ct=1;ct=2,'
    assert L.parse_links(text) == [
        ("/", {"rt": "oma.lwm2m", "ct": "11543"}),
        ("/1/0", {}),
        ("/3/0", {"ver": "1.1"}),
        ("/5", {"ver": "2.0", "obs": None}),
        ("/x", {"title": 'a,b;"c"', "ct": "1"}),
    ]
    assert L.parse_links(b"") == []
    assert L.parse_links(b"</3/0/7>;dim=2;pmin=10") == [("/3/0/7", {"dim": "2", "pmin": "10"})]
    for bad in ("/1/0", "<1/0", '</1>;rt="x', "</1> junk", "</1>;=5", b"\xff"):
        with pytest.raises(FormatError):
            L.parse_links(bad)
    # what we produce parses back
    reg = L.registration_links({1: [0], 5: []}, {5: "2.0"}.get, content_format=11543)
    assert [L.parse_path(u) for u, _ in L.parse_links(reg)] == [None, (1, 0), (5,)]
    assert L.parse_path("/lwm2m/3/0", "/lwm2m") == (3, 0)
    assert L.parse_path("/3/x") is None


# ---------------------------------------------------------------------------
# fuzzing: decoders only ever raise FormatError


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if op == 0 and b:  # flip a byte
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1:  # insert bytes
            pos = rng.randint(0, len(b))
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif op == 2 and b:  # delete a slice
            pos = rng.randrange(len(b))
            del b[pos : pos + rng.randint(1, 4)]
        elif op == 3 and b:  # truncate
            del b[rng.randrange(len(b)) :]
        elif op == 4 and b:  # flip a bit
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 5 and len(b) > 2:  # duplicate a slice
            i = rng.randrange(len(b))
            b[i:i] = b[i : i + rng.randint(1, 8)]
    return bytes(b)


def _only_format_errors(fn, data):
    try:
        fn(data)
    except FormatError:
        pass


ALL_TYPES = {**DEVICE_TYPES, 4: "none", 20: "float", 21: "boolean", 22: "opaque", 23: "objlnk"}


def test_fuzz_tlv():
    rng = random.Random(0x1542)
    seeds = [
        DEVICE_TLV,
        ACL_TLV,
        SERVER_TLV,
        OBJ66_TLV,
        tlv.encode_instance(DEVICE, DEVICE_TYPES, instance_id=0),
        tlv.encode_instance({20: 1.5, 21: True, 22: b"\x00" * 300, 23: (1, 2)}, ALL_TYPES),
    ]
    decoders = [
        tlv.decode_entries,
        lambda d: tlv.decode_instance(d, ALL_TYPES),
        lambda d: tlv.decode_instance(d, ALL_TYPES, 0, keep_unknown=True),
        lambda d: tlv.decode_object(d, ALL_TYPES),
        lambda d: tlv.decode_object(d, ACL_TYPES.get, keep_unknown=True),
        lambda d: tlv.decode_create(d, OBJ66_TYPES),
        lambda d: tlv.decode_resource(d, 6, "integer"),
        lambda d: tlv.decode_resource(d, 0, "string"),
        lambda d: tlv.decode_resource(d, 13, "float"),
        lambda d: tlv.decode_resource(d, 2, "objlnk"),
        lambda d: tlv.decode_resource(d, 1, "boolean"),
    ]
    for i in range(4000):
        if i % 4 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        elif i % 4 == 1:
            data = _raw_tlv(rng, 0)
        else:
            data = _mutate(rng, rng.choice(seeds))
        for fn in decoders:
            _only_format_errors(fn, data)


def _raw_tlv(rng: random.Random, depth: int) -> bytes:
    """Well-framed TLVs with arbitrary kinds, ids, nesting and value sizes."""
    out = b""
    for _ in range(rng.randint(0, 3)):
        kind = rng.randrange(4)
        ident = rng.choice([0, 1, 2, 6, 9, 13, 20, 21, 22, 23, 99, 255, 256, 310, 65535])
        if depth < 3 and kind in (0, 2) and rng.random() < 0.8:
            body = _raw_tlv(rng, depth + 1)
        else:
            body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 3, 4, 5, 8, 9, 300])))
        n = len(body)
        t = kind << 6 | (0x20 if ident > 255 else 0)
        idb = ident.to_bytes(2 if ident > 255 else 1, "big")
        if n < 8 and rng.random() < 0.7:
            hdr = bytes([t | n]) + idb
        else:
            lt = rng.choice([x for x in (1, 2, 3) if n < 1 << (8 * x)])
            hdr = bytes([t | lt << 3]) + idb + n.to_bytes(lt, "big")
        out += hdr + body
    return out


def test_fuzz_json():
    rng = random.Random(0x1543)
    seeds = [
        J.encode_instance(3, 0, DEVICE, DEVICE_TYPES),
        J.encode_object(66, OBJ66, OBJ66_TYPES),
        J.encode_resource(3, 0, 6, {0: 1, 1: 5}, "integer"),
        J.encode_instance(3, 0, {20: 1.5, 21: True, 22: b"\x00\x01", 23: (1, 2)}, ALL_TYPES),
        stdjson.dumps(DEVICE_JSON, indent=1).encode(),
    ]
    atoms = [None, True, False, 0, -1, 1.5, 1e308, 2**64, "", "0", "3/0", "/3/0/", "AAE=", "1:2", [], {}]
    keys = ["bn", "bt", "e", "n", "t", "v", "sv", "bv", "ov", "x"]

    def rand_json(depth=0):
        r = rng.random()
        if depth > 3 or r < 0.4:
            return rng.choice(atoms)
        if r < 0.6:
            return [rand_json(depth + 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice(keys): rand_json(depth + 1) for _ in range(rng.randint(0, 4))}

    decoders = [
        lambda d: J.decode_instance(d, 3, 0, ALL_TYPES),
        lambda d: J.decode_object(d, 66, OBJ66_TYPES),
        lambda d: J.decode_create(d, 3, ALL_TYPES.get),
        lambda d: J.decode_resource(d, 3, 0, 6, "integer"),
        lambda d: J.decode_resource(d, 3, 0, 22, "opaque"),
        lambda d: J.decode_resource(d, 66, 0, 2, "objlnk"),
        lambda d: J.parse_entries(d, ()),
    ]
    for i in range(3000):
        r = i % 3
        if r == 0:
            data = _mutate(rng, rng.choice(seeds))
        elif r == 1:
            doc = {"bn": rng.choice(atoms + ["/3/0/", "/66/"]), "e": [rand_json() for _ in range(rng.randint(0, 3))]}
            if rng.random() < 0.5:
                del doc["bn"]
            data = stdjson.dumps(doc).encode()
        else:
            entry = {rng.choice(keys): rng.choice(atoms) for _ in range(rng.randint(0, 4))}
            entry.setdefault("n", rng.choice(["0", "6/0", "22", "2", "0/2", "/3/0/9", "", "x"]))
            data = stdjson.dumps({"bn": rng.choice(["/3/0/", "/66/", "/", ""]), "e": [entry]}).encode()
        for fn in decoders:
            _only_format_errors(fn, data)


def test_fuzz_text_and_links():
    rng = random.Random(40)
    seeds = [b"123", b"-1.5e3", b"1", b"3:0", "h\u00e9".encode(), b'</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>;ver=1.1', b"</3/0/7>;dim=2;pmin=10"]
    alphabet = b'0123456789+-.eE:,;<>="\\/ \t\xff\xc3abc'
    for i in range(4000):
        if i % 2:
            data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        else:
            data = _mutate(rng, rng.choice(seeds))
        for t in ("string", "integer", "float", "boolean", "time", "objlnk", "opaque", "none"):
            _only_format_errors(lambda d: T.decode_value(t, d), data)
        _only_format_errors(L.parse_links, data)
        _only_format_errors(lambda d: F.decode(F.TEXT, (3, 0, 9), d, DEVICE_TYPES), data)


def test_fuzz_base64_opaque_json():
    rng = random.Random(7)
    for _ in range(500):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 30)))
        payload = J.encode_resource(5, 0, 0, raw, "opaque")
        assert J.decode_resource(payload, 5, 0, 0, "opaque") == raw
        assert stdjson.loads(payload)["e"][0]["sv"] == base64.b64encode(raw).decode()
