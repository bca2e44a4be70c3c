"""Tests for emulator.lwm2m.models and the DDF files in objects/."""

from __future__ import annotations

import dataclasses
import random
import xml.etree.ElementTree as ET

import pytest

from emulator.lwm2m.models import (
    ModelError,
    ModelRegistry,
    ObjectModel,
    ResourceModel,
    builtin_objects_dir,
    load_directory,
    load_file,
    parse_models,
)

OBJECTS_DIR = builtin_objects_dir()
EXPECTED_IDS = {0, 1, 2, 3, 4, 5, 6, 7, 11, 3200, 3300, 3303, 3304, 3311, 3323, 33211}
XML_FILES = sorted(OBJECTS_DIR.glob("*.xml"))

OMA_STYLE = """<?xml version="1.0" encoding="UTF-8"?>
<!-- a licence comment like the one in real OMA files -->
<LWM2M xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:noNamespaceSchemaLocation="http://openmobilealliance.org/tech/profiles/LWM2M.xsd">
  <Object ObjectType="MODefinition">
    <Name>Example</Name>
    <Description1><![CDATA[Text with <markup> & stuff]]></Description1>
    <ObjectID>10</ObjectID>
    <ObjectURN>urn:oma:lwm2m:oma:10</ObjectURN>
    <LWM2MVersion>1.1</LWM2MVersion>
    <ObjectVersion>1.2</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances>
    <Mandatory>Optional</Mandatory>
    <Resources>
      <Item ID="2"><Name>B</Name><Operations>rw</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>Unsigned Integer</Type><RangeEnumeration> 0..10 </RangeEnumeration>
        <Units></Units><Description/></Item>
      <Item ID="1"><Name>A</Name><Operations>R</Operations>
        <MultipleInstances>Multiple</MultipleInstances><Mandatory>Mandatory</Mandatory>
        <Type>Corelnk</Type><RangeEnumeration/><Units>s</Units>
        <Description><![CDATA[x]]></Description></Item>
      <Item ID="3"><Name>C</Name><Operations>E</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type></Type><RangeEnumeration/><Units/><Description/></Item>
    </Resources>
    <Description2></Description2>
  </Object>
</LWM2M>
"""


def _obj(oid: str = "1", resources: str = "<Resources/>", extra: str = "") -> str:
    return (
        "<LWM2M><Object ObjectType='MODefinition'><Name>T</Name>"
        f"<ObjectID>{oid}</ObjectID>{extra}"
        "<MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>"
        f"{resources}</Object></LWM2M>"
    )


# ---------------------------------------------------------------- objects/


def test_builtin_dir_location():
    assert OBJECTS_DIR.name == "objects"
    assert OBJECTS_DIR.is_dir()


def test_expected_files_present():
    assert {int(p.stem) for p in XML_FILES} == EXPECTED_IDS


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: p.name)
def test_every_file_loads(path):
    raw = path.read_bytes()
    raw.decode("utf-8")  # must be UTF-8
    ET.fromstring(raw)  # must be well-formed for a plain XML parser too
    models = load_file(path)
    assert len(models) == 1
    model = models[0]
    assert model.id == int(path.stem)
    assert model.name
    assert model.version == "1.0"
    assert model.lwm2m_version == "1.0"
    assert model.urn and model.urn.endswith(f":{model.id}")
    assert model.resources, "every built-in object has resources"
    assert list(model.resources) == sorted(model.resources)
    for rid, res in model.resources.items():
        assert res.id == rid
        assert res.executable == (res.type == "none")


def test_load_directory_builtin():
    models = load_directory(OBJECTS_DIR)
    assert set(models) == EXPECTED_IDS
    assert list(models) == sorted(models)


def test_device_spot_checks():
    dev = load_directory(OBJECTS_DIR)[3]
    assert dev.name == "Device"
    assert not dev.multiple and dev.mandatory
    r0 = dev.resources[0]
    assert (r0.name, r0.operations, r0.type) == ("Manufacturer", "R", "string")
    assert r0.readable and not r0.writable and not r0.executable
    r4 = dev.resources[4]
    assert (r4.name, r4.operations, r4.type) == ("Reboot", "E", "none")
    assert r4.executable and r4.mandatory and not r4.readable
    r9 = dev.resources[9]
    assert (r9.name, r9.operations, r9.type) == ("Battery Level", "R", "integer")
    assert r9.range_bounds() == (0.0, 100.0)
    assert r9.units == "%"
    r13 = dev.resources[13]
    assert (r13.name, r13.operations, r13.type) == ("Current Time", "RW", "time")
    assert r13.readable and r13.writable
    assert dev.resources[11].multiple and dev.resources[11].mandatory
    assert dev.resources[22].type == "objlnk"
    assert set(dev.resources) == set(range(23))


def test_other_spot_checks():
    reg = ModelRegistry.builtin()
    assert reg.errors == []
    lifetime = reg.get(1).resources[1]
    assert (lifetime.name, lifetime.operations, lifetime.type) == ("Lifetime", "RW", "integer")
    assert lifetime.units == "s"
    pkg = reg.get(5).resources[0]
    assert (pkg.name, pkg.operations, pkg.type) == ("Package", "W", "opaque")
    assert pkg.writable and not pkg.readable
    assert 4 not in reg.get(5).resources  # not part of Firmware Update 1.0
    temp = reg.get(3303).resources[5700]
    assert (temp.name, temp.operations, temp.type) == ("Sensor Value", "R", "float")
    sec = reg.get(0)
    assert sec.multiple and all(r.operations == "" for r in sec.resources.values())
    assert sec.resources[10].range_bounds() == (1.0, 65534.0)
    assert sec.resources[0].range_bounds() is None  # "0-255 bytes"
    telit = reg.get(33211)
    assert telit.name == "Telit Service" and telit.multiple
    enable = telit.resources[0]
    assert enable.multiple and enable.operations == "RW" and enable.type == "integer"
    assert "public host code" in telit.description
    light = reg.get(3311)
    assert light.resources[5850].type == "boolean"
    assert light.resources[5851].range_bounds() == (0.0, 100.0)


# ---------------------------------------------------------------- parsing


def test_oma_style_document():
    (model,) = parse_models(OMA_STYLE)
    assert model.id == 10 and model.name == "Example"
    assert model.version == "1.2" and model.lwm2m_version == "1.1"
    assert model.multiple and not model.mandatory
    assert model.description == "Text with <markup> & stuff"
    assert list(model.resources) == [1, 2, 3]
    assert model.resources[1].type == "string"  # corelnk
    assert model.resources[1].multiple and model.resources[1].units == "s"
    assert model.resources[2].type == "integer"  # unsigned integer
    assert model.resources[2].operations == "RW"
    assert model.resources[2].range == "0..10"
    assert model.resources[2].units is None
    assert model.resources[3].type == "none"
    assert model.resource(3) is model.resources[3]
    assert model.resource(99) is None


def test_bytes_bom_and_whitespace():
    raw = OMA_STYLE.encode("utf-8")
    for variant in (raw, b"\xef\xbb\xbf" + raw, b"\n  \r\n" + raw, b"  \xef\xbb\xbf\n" + raw):
        (model,) = parse_models(variant)
        assert model.id == 10
    assert parse_models("\ufeff\n " + OMA_STYLE)[0].id == 10
    assert parse_models(bytearray(raw))[0].id == 10


def test_other_encodings():
    doc = OMA_STYLE.replace("Example", "Température")
    latin = doc.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("latin-1")
    assert parse_models(latin)[0].name == "Température"
    utf16 = doc.replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert parse_models(utf16.encode("utf-16"))[0].name == "Température"
    assert parse_models(utf16)[0].name == "Température"  # str: declaration ignored


def test_namespaced_and_bare_object_root():
    doc = (
        "<m:LWM2M xmlns:m='urn:x'><m:Object><m:ObjectID>7</m:ObjectID>"
        "<m:Resources><m:Item m:ID='1'><m:Type>Float</m:Type></m:Item></m:Resources>"
        "</m:Object></m:LWM2M>"
    )
    (m,) = parse_models(doc)
    assert m.id == 7 and m.resources[1].type == "float"
    assert m.name == "Object 7" and m.version == "1.0" and m.urn is None
    (m,) = parse_models("<Object xmlns='urn:default'><ObjectID>8</ObjectID></Object>")
    assert m.id == 8 and dict(m.resources) == {}


def test_empty_or_missing_resources():
    assert dict(parse_models(_obj())[0].resources) == {}
    assert dict(parse_models(_obj(resources=""))[0].resources) == {}
    assert dict(parse_models(_obj(resources="<Resources>\n  </Resources>"))[0].resources) == {}


def test_several_objects_in_one_document():
    doc = "<LWM2M>" + _obj("1")[7:-8] + _obj("2")[7:-8] + "</LWM2M>"
    assert [m.id for m in parse_models(doc)] == [1, 2]


@pytest.mark.parametrize(
    "doc, fragment",
    [
        (b"", "malformed"),
        (b"not xml at all", "malformed"),
        (b"<LWM2M><Object>", "malformed"),
        (b"<LWM2M></LWM2M>", "no <Object>"),
        (b"<Foo/>", "root"),
        (_obj(oid=""), "ObjectID"),
        ("<LWM2M><Object><Name>x</Name></Object></LWM2M>", "ObjectID"),
        (_obj(oid="abc"), "ObjectID"),
        (_obj(oid="-1"), "ObjectID"),
        (_obj(oid="70000"), "ObjectID"),
        (_obj(oid="\u0663"), "ObjectID"),  # non-ASCII digit
        (_obj(resources="<Resources><Item><Name>x</Name></Item></Resources>"), "resource ID"),
        (_obj(resources="<Resources><Item ID='x'/></Resources>"), "resource ID"),
        (_obj(resources="<Resources><Item ID='1'/><Item ID='1'/></Resources>"), "duplicate"),
        (_obj(resources="<Resources><Item ID='1'><Operations>RX</Operations></Item></Resources>"), "Operations"),
        (_obj(resources="<Resources><Item ID='1'><Type>Decimal</Type></Item></Resources>"), "Type"),
        (_obj(resources="<Resources><Item ID='1'><Mandatory>Maybe</Mandatory></Item></Resources>"), "Mandatory"),
        (_obj(extra="<MultipleInstances>Many</MultipleInstances>"), "MultipleInstances"),
        ("<LWM2M>" + _obj("1")[7:-8] * 2 + "</LWM2M>", "twice"),
        (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
            b"<LWM2M><Object><ObjectID>1</ObjectID><Name>&b;</Name></Object></LWM2M>",
            "entity",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<LWM2M><Object><ObjectID>1</ObjectID><Name>&x;</Name></Object></LWM2M>",
            "entity",
        ),
        (b'<?xml version="1.0" encoding="no-such-codec"?><LWM2M/>', ""),
        (b"\xff\xfe\x00\x00garbage", ""),
    ],
)
def test_malformed_raises_model_error(doc, fragment):
    with pytest.raises(ModelError) as info:
        parse_models(doc)
    assert fragment in str(info.value)


def test_wrong_input_type():
    with pytest.raises(ModelError):
        parse_models(None)  # type: ignore[arg-type]
    with pytest.raises(ModelError):
        parse_models(12)  # type: ignore[arg-type]


def test_model_error_is_value_error():
    assert issubclass(ModelError, ValueError)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not buf:
            buf.extend(rng.randbytes(rng.randint(1, 20)))
            continue
        op = rng.randrange(8)
        pos = rng.randrange(len(buf))
        if op == 0:  # flip a byte
            buf[pos] = rng.randrange(256)
        elif op == 1:  # delete a span
            del buf[pos : pos + rng.randint(1, 40)]
        elif op == 2:  # insert random bytes
            buf[pos:pos] = rng.randbytes(rng.randint(1, 10))
        elif op == 3:  # truncate
            del buf[pos:]
        elif op == 4:  # duplicate a span
            end = min(len(buf), pos + rng.randint(1, 200))
            buf[pos:pos] = buf[pos:end]
        elif op == 5:  # insert XML-ish tokens
            tok = rng.choice(
                [b"<", b">", b"</Item>", b"<Item ID='9'>", b"&", b"&amp;", b"]]>",
                 b"<![CDATA[", b"<!--", b"-->", b"\"", b"<!DOCTYPE x>", b"\x00",
                 b"99999999", b"-1", b"<Resources/>", b"\xef\xbb\xbf", b"\xff\xfe"]
            )
            buf[pos:pos] = tok
        elif op == 6:  # swap digits (ids, ranges)
            if chr(buf[pos]).isdigit():
                buf[pos] = ord(rng.choice("0123456789"))
            else:
                buf[pos] = ord(rng.choice("0123456789-x "))
        else:  # move a span elsewhere
            end = min(len(buf), pos + rng.randint(1, 60))
            chunk = buf[pos:end]
            del buf[pos:end]
            dest = rng.randrange(len(buf) + 1)
            buf[dest:dest] = chunk
    return bytes(buf)


def test_fuzz_only_model_error():
    rng = random.Random(0x33211)
    seeds = [p.read_bytes() for p in XML_FILES] + [OMA_STYLE.encode()]
    outcomes = {"ok": 0, "error": 0}
    for i in range(4000):
        if i % 20 == 0:
            data = rng.randbytes(rng.randint(0, 300))
        else:
            data = _mutate(rng, rng.choice(seeds))
        try:
            models = parse_models(data)
        except ModelError:
            outcomes["error"] += 1
            continue
        except Exception as exc:  # pragma: no cover - the point of the test
            pytest.fail(f"iteration {i}: {type(exc).__name__}: {exc!r} for {data[:200]!r}")
        outcomes["ok"] += 1
        for m in models:
            assert isinstance(m, ObjectModel)
            for r in m.resources.values():
                r.range_bounds()  # must not raise either
        # str input path as well
        try:
            parse_models(data.decode("utf-8", "replace"))
        except ModelError:
            pass
    assert outcomes["ok"] > 100 and outcomes["error"] > 100, outcomes


# ---------------------------------------------------------------- range_bounds


def _res(rng: str | None) -> ResourceModel:
    return ResourceModel(1, "x", "R", False, False, "integer", rng, None)


@pytest.mark.parametrize(
    "text, bounds",
    [
        ("0..100", (0.0, 100.0)),
        ("0-100", (0.0, 100.0)),
        ("-40..85", (-40.0, 85.0)),
        ("-40-85", (-40.0, 85.0)),
        ("1-65534", (1.0, 65534.0)),
        (" 0 - 255 ", (0.0, 255.0)),
        ("0...7", (0.0, 7.0)),
        ("-1.5..2.25", (-1.5, 2.25)),
        ("0 to 10", (0.0, 10.0)),
        ("-100--10", (-100.0, -10.0)),
        ("0\u2013100", (0.0, 100.0)),
        (None, None),
        ("", None),
        ("0-255 bytes", None),
        ("16-bit", None),
        ("16-32-48 bytes", None),
        ("6 bytes", None),
        ("U, UQ, S", None),
        ("100..0", None),
        ("5", None),
        ("a-b", None),
    ],
)
def test_range_bounds(text, bounds):
    assert _res(text).range_bounds() == bounds


def test_dataclasses_are_frozen_and_hashable():
    reg = ModelRegistry.builtin()
    dev = reg.get(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        dev.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        dev.resources[99] = dev.resources[0]  # type: ignore[index]
    assert hash(dev) == hash(load_directory(OBJECTS_DIR)[3])
    assert dev == load_directory(OBJECTS_DIR)[3]
    assert hash(dev.resources[0])


def test_object_model_orders_resources():
    r2 = ResourceModel(2, "b", "R", False, False, "string", None, None)
    r1 = ResourceModel(1, "a", "R", False, False, "string", None, None)
    m = ObjectModel(id=9, name="n", urn=None, resources={2: r2, 1: r1})
    assert list(m.resources) == [1, 2]
    assert ObjectModel(id=9, name="n").resources == {}


# ---------------------------------------------------------------- files & registry


def test_load_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.xml"
    with pytest.raises(ModelError, match="nope.xml"):
        load_file(missing)
    bad = tmp_path / "bad.xml"
    bad.write_text("<LWM2M><Object>", encoding="utf-8")
    with pytest.raises(ModelError, match="bad.xml"):
        load_file(bad)


def test_load_directory_override_and_bad_file(tmp_path):
    (tmp_path / "a.xml").write_text(_obj("5").replace("<Name>T</Name>", "<Name>first</Name>"))
    (tmp_path / "b.xml").write_text(_obj("5").replace("<Name>T</Name>", "<Name>second</Name>"))
    (tmp_path / "ignored.txt").write_text("junk")
    assert load_directory(tmp_path)[5].name == "second"
    (tmp_path / "c.xml").write_text("<<<")
    with pytest.raises(ModelError, match="c.xml"):
        load_directory(tmp_path)
    with pytest.raises(ModelError):
        load_directory(tmp_path / "missing")


def test_registry_from_dirs_non_strict(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "broken.xml").write_bytes(b"<LWM2M><Object><ObjectID>x</ObjectID></Object></LWM2M>")
    (user / "3.xml").write_text(
        _obj("3").replace("<Name>T</Name>", "<Name>My Device</Name>"), encoding="utf-8"
    )
    (user / "40000.xml").write_text(_obj("40000"), encoding="utf-8")
    reg = ModelRegistry.from_dirs([OBJECTS_DIR, user, None, tmp_path / "absent"], strict=False)
    assert len(reg.errors) == 2
    assert any("broken.xml" in e for e in reg.errors)
    assert any("absent" in e for e in reg.errors)
    assert reg.get(3).name == "My Device"  # user dir overrides built-in
    assert 40000 in reg and 3303 in reg and 12345 not in reg
    assert list(reg) == sorted(reg)
    assert set(reg) == EXPECTED_IDS | {40000}
    assert reg.get("3") is None and reg.get(True) is None
    assert reg[3303].name == "Temperature"
    with pytest.raises(KeyError):
        reg[12345]
    reg.errors.append("tamper")
    assert len(reg.errors) == 2


def test_registry_from_dirs_strict(tmp_path):
    (tmp_path / "broken.xml").write_text("<LWM2M/>")
    with pytest.raises(ModelError, match="broken.xml"):
        ModelRegistry.from_dirs([OBJECTS_DIR, tmp_path])
    with pytest.raises(ModelError):
        ModelRegistry.from_dirs([tmp_path / "absent"], strict=True)
