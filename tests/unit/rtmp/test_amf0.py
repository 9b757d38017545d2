"""AMF0 (interlive.rtmp.amf0): exact vectors from the AMF0 spec layout, round trips, fuzz."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlive.rtmp import amf0
from interlive.rtmp.amf0 import UNDEFINED, AmfDate, AmfValue, EcmaArray
from interlive.rtmp.errors import AmfError

VECTORS: list[tuple[AmfValue, bytes]] = [
    (0.0, bytes.fromhex("000000000000000000")),
    (1.0, bytes.fromhex("003ff0000000000000")),
    (-2.5, bytes.fromhex("00c004000000000000")),
    (True, b"\x01\x01"),
    (False, b"\x01\x00"),
    ("", b"\x02\x00\x00"),
    ("connect", b"\x02\x00\x07connect"),
    ("é", b"\x02\x00\x02\xc3\xa9"),
    (None, b"\x05"),
    (UNDEFINED, b"\x06"),
    ({}, b"\x03\x00\x00\x09"),
    ({"app": "live"}, b"\x03\x00\x03app\x02\x00\x04live\x00\x00\x09"),
    (EcmaArray(), b"\x08\x00\x00\x00\x00\x00\x00\x09"),
    (
        EcmaArray(width=320.0),
        b"\x08\x00\x00\x00\x01\x00\x05width\x00\x40\x74\x00\x00\x00\x00\x00\x00\x00\x00\x09",
    ),
    ([], b"\x0a\x00\x00\x00\x00"),
    ([1.0, None], b"\x0a\x00\x00\x00\x02\x00\x3f\xf0\x00\x00\x00\x00\x00\x00\x05"),
    (AmfDate(0.0, 0), b"\x0b" + bytes(8) + b"\x00\x00"),
    ("x" * 70000, b"\x0c\x00\x01\x11\x70" + b"x" * 70000),
]


@pytest.mark.parametrize(("value", "wire"), VECTORS, ids=lambda v: repr(v)[:30])
def test_exact_vectors(value: AmfValue, wire: bytes) -> None:
    assert amf0.encode(value) == wire
    decoded = amf0.decode(wire)
    assert decoded == value
    assert type(decoded) is type(value)


def test_int_encodes_as_number_and_decodes_as_float() -> None:
    assert amf0.encode(3) == amf0.encode(3.0)
    assert amf0.decode(amf0.encode(3)) == 3.0


def test_decode_all_command() -> None:
    wire = amf0.encode_all("createStream", 4, None)
    assert amf0.decode_all(wire) == ["createStream", 4.0, None]


def test_ecma_count_is_only_a_hint() -> None:
    # ffmpeg and others write counts that do not match; the end marker decides.
    wire = b"\x08\x00\x00\x00\x07\x00\x01a\x01\x01\x00\x00\x09"
    assert amf0.decode(wire) == {"a": True}


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"", "truncated type marker"),
        (b"\x00\x00", "truncated number"),
        (b"\x02\x00\x05ab", "truncated string"),
        (b"\x02\x00\x02\xff\xfe", "invalid UTF-8"),
        (b"\x03\x00\x01a\x05", "truncated object key length"),
        (b"\x03\x00\x00\x05", "without object-end"),
        (b"\x09", "unexpected object-end"),
        (b"\x07\x00\x01", "reference"),
        (b"\x10", "typed object"),
        (b"\x11", "AMF3"),
        (b"\x42", "unknown AMF0 type marker 0x42"),
        (b"\x0a\xff\xff\xff\xff\x05", "declares 4294967295 values"),
        (b"\x05\x05", "trailing bytes"),
        (b"\x0c\x00\x00\x00\x09abc", "truncated long string"),
    ],
)
def test_malformed_is_precise(wire: bytes, message: str) -> None:
    with pytest.raises(AmfError, match=message):
        amf0.decode(wire)


def test_nesting_limit() -> None:
    deep: AmfValue = None
    for _ in range(40):
        deep = [deep]
    with pytest.raises(AmfError, match="nests deeper"):
        amf0.encode(deep)
    wire = b"\x0a\x00\x00\x00\x01" * 40 + b"\x05"
    with pytest.raises(AmfError, match="nests deeper than 32"):
        amf0.decode(wire)
    assert amf0.decode(wire, max_depth=64) is not None


def test_item_limit() -> None:
    wire = amf0.encode([None] * 100)
    with pytest.raises(AmfError, match="max_items"):
        amf0.decode(wire, max_items=50)


@pytest.mark.parametrize("bad", [object(), b"bytes", {1: 2}, {"": 1}, 2**1100])
def test_unencodable(bad: object) -> None:
    with pytest.raises(AmfError):
        amf0.encode(bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------ properties

keys = st.text(min_size=1, max_size=20)
scalars = (
    st.floats(allow_nan=False)
    | st.booleans()
    | st.text(max_size=50)
    | st.none()
    | st.just(UNDEFINED)
    | st.builds(
        AmfDate,
        st.floats(allow_nan=False),
        st.integers(-0x8000, 0x7FFF),
    )
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(keys, children, max_size=5)
        | st.dictionaries(keys, children, max_size=5).map(EcmaArray)
    ),
    max_leaves=30,
)


def _same(a: AmfValue, b: AmfValue) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        assert isinstance(b, float)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


@given(values)
def test_round_trip(value: AmfValue) -> None:
    wire = amf0.encode(value)
    assert _same(amf0.decode(wire), value)
    assert amf0.encode(amf0.decode(wire)) == wire


@given(st.binary(max_size=200))
@settings(max_examples=500)
def test_fuzz_random_bytes_only_amf_error(data: bytes) -> None:
    with contextlib.suppress(AmfError):
        amf0.decode_all(data)


@given(values, st.data())
@settings(max_examples=300)
def test_fuzz_mutated_only_amf_error(value: AmfValue, data: st.DataObject) -> None:
    wire = bytearray(amf0.encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(wire) - 1))
        wire[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    with contextlib.suppress(AmfError):
        amf0.decode_all(bytes(wire[:cut]))
