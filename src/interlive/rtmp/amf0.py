"""AMF0: the Action Message Format used by RTMP commands and FLV script data.

Implements the AMF0 specification (Adobe, "Action Message Format -- AMF 0",
December 2007), §2.2-§2.17, for the types RTMP peers actually send:

=========  ======  ==========================================
marker     type    Python value
=========  ======  ==========================================
``0x00``   number  :class:`float` (``int``/``float`` encode)
``0x01``   boolean :class:`bool`
``0x02``   string  :class:`str` (UTF-8, up to 65535 bytes)
``0x03``   object  :class:`dict` ``[str, value]``
``0x05``   null    ``None``
``0x06``   undef.  :data:`UNDEFINED`
``0x08``   ECMA    :class:`EcmaArray` (a ``dict`` subclass)
``0x09``   end     (terminates object / ECMA array only)
``0x0A``   strict  :class:`list`
``0x0B``   date    :class:`AmfDate`
``0x0C``   long s. :class:`str` longer than 65535 UTF-8 bytes
=========  ======  ==========================================

Movieclip, reference, unsupported, recordset, XML, typed object and the AVM+
switch are refused with :class:`AmfError`.

Theory of operation
-------------------
Decoding is a recursive descent over a ``memoryview`` with an explicit depth
counter (``max_depth``) and a global item budget (``max_items``) so that a
hostile payload cannot exhaust the stack or memory: every container entry
costs one item, and the declared count of a strict array is checked against
the bytes that remain before anything is allocated.  The declared count of an
ECMA array is only a hint (encoders often write 0) and is ignored; the array
ends at the object-end marker like an object.  Every failure is an
:class:`AmfError` naming the offset and the cause.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Final, TypeAlias, final

from .errors import AmfError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_ITEMS",
    "UNDEFINED",
    "AmfDate",
    "AmfValue",
    "EcmaArray",
    "Undefined",
    "decode",
    "decode_all",
    "encode",
    "encode_all",
]

NUMBER: Final = 0x00
BOOLEAN: Final = 0x01
STRING: Final = 0x02
OBJECT: Final = 0x03
NULL: Final = 0x05
UNDEFINED_MARKER: Final = 0x06
ECMA_ARRAY: Final = 0x08
OBJECT_END: Final = 0x09
STRICT_ARRAY: Final = 0x0A
DATE: Final = 0x0B
LONG_STRING: Final = 0x0C

_UNSUPPORTED_NAMES: Final = {
    0x04: "movieclip",
    0x07: "reference",
    0x0D: "unsupported",
    0x0E: "recordset",
    0x0F: "xml document",
    0x10: "typed object",
    0x11: "avmplus object (AMF3)",
}

DEFAULT_MAX_DEPTH: Final = 32
DEFAULT_MAX_ITEMS: Final = 65536

_DOUBLE = struct.Struct("!d")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_DATE = struct.Struct("!dh")
_OBJECT_END_BYTES: Final = b"\x00\x00\x09"


@final
class Undefined:
    """The AMF0 ``undefined`` value (distinct from ``null``, which is ``None``)."""

    __slots__ = ()
    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __reduce__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = Undefined()


class EcmaArray(dict[str, "AmfValue"]):
    """An AMF0 ECMA array (associative array), e.g. the body of ``onMetaData``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"EcmaArray({dict.__repr__(self)})"


@dataclass(frozen=True, slots=True)
class AmfDate:
    """An AMF0 date: milliseconds since the Unix epoch (UTC) and a timezone field.

    The spec says the timezone is reserved and should be 0; it is kept so a
    decoded value re-encodes byte-identically.
    """

    milliseconds: float
    timezone: int = 0


AmfValue: TypeAlias = (
    float
    | int
    | bool
    | str
    | Undefined
    | AmfDate
    | EcmaArray
    | dict[str, "AmfValue"]
    | list["AmfValue"]
    | None
)


# --------------------------------------------------------------------- encoding


def encode(value: AmfValue, *, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """Encode one value; raise :class:`AmfError` for values AMF0 cannot carry."""
    out = bytearray()
    _encode_into(out, value, max_depth)
    return bytes(out)


def encode_all(*values: AmfValue) -> bytes:
    """Encode a sequence of values back to back, as in an RTMP command message."""
    out = bytearray()
    for value in values:
        _encode_into(out, value, DEFAULT_MAX_DEPTH)
    return bytes(out)


def _encode_key(out: bytearray, key: object) -> None:
    if not isinstance(key, str):
        raise AmfError(f"object keys must be str, not {type(key).__name__}")
    raw = key.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise AmfError(f"object key of {len(raw)} bytes exceeds 65535")
    if not raw:
        # An empty key followed by 0x09 would read as the object end marker.
        raise AmfError("empty object key is not representable in AMF0")
    out += _U16.pack(len(raw))
    out += raw


def _encode_into(out: bytearray, value: AmfValue, depth: int) -> None:
    if depth < 0:
        raise AmfError("value nests deeper than max_depth")
    if value is None:
        out.append(NULL)
    elif value is UNDEFINED:
        out.append(UNDEFINED_MARKER)
    elif isinstance(value, bool):
        out.append(BOOLEAN)
        out.append(1 if value else 0)
    elif isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError as exc:
            raise AmfError(f"integer {value} does not fit an IEEE double") from exc
        out.append(NUMBER)
        out += _DOUBLE.pack(number)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += _U16.pack(len(raw))
        elif len(raw) <= 0xFFFFFFFF:
            out.append(LONG_STRING)
            out += _U32.pack(len(raw))
        else:
            raise AmfError("string longer than 2**32-1 bytes")
        out += raw
    elif isinstance(value, AmfDate):
        if not -0x8000 <= value.timezone <= 0x7FFF:
            raise AmfError(f"date timezone {value.timezone} out of s16 range")
        out.append(DATE)
        out += _DATE.pack(value.milliseconds, value.timezone)
    elif isinstance(value, dict):
        if isinstance(value, EcmaArray):
            out.append(ECMA_ARRAY)
            out += _U32.pack(len(value))
        else:
            out.append(OBJECT)
        for key, item in value.items():
            _encode_key(out, key)
            _encode_into(out, item, depth - 1)
        out += _OBJECT_END_BYTES
    elif isinstance(value, list | tuple):
        if len(value) > 0xFFFFFFFF:
            raise AmfError("strict array longer than 2**32-1")
        out.append(STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _encode_into(out, item, depth - 1)
    else:
        raise AmfError(f"cannot encode {type(value).__name__} as AMF0")


# --------------------------------------------------------------------- decoding


class _Decoder:
    __slots__ = ("data", "items", "max_depth", "pos")

    def __init__(self, data: bytes | bytearray | memoryview, max_depth: int, max_items: int):
        view = memoryview(data)
        self.data = view if view.format == "B" and view.ndim == 1 else view.cast("B")
        self.pos = 0
        self.max_depth = max_depth
        self.items = max_items

    def _need(self, n: int, what: str) -> int:
        start = self.pos
        if n > len(self.data) - start:
            raise AmfError(
                f"truncated {what} at offset {start}: need {n} bytes, have {len(self.data) - start}"
            )
        self.pos = start + n
        return start

    def _spend(self) -> None:
        self.items -= 1
        if self.items < 0:
            raise AmfError("too many values (max_items exceeded)")

    def _utf8(self, start: int, length: int) -> str:
        try:
            return str(self.data[start : start + length], "utf-8")
        except UnicodeDecodeError as exc:
            raise AmfError(f"invalid UTF-8 in string at offset {start}: {exc.reason}") from exc

    def _short_string(self, what: str) -> str:
        at = self._need(2, what + " length")
        (length,) = _U16.unpack_from(self.data, at)
        start = self._need(length, what)
        return self._utf8(start, length)

    def value(self, depth: int) -> AmfValue:
        self._spend()
        at = self._need(1, "type marker")
        marker = self.data[at]
        if marker == NUMBER:
            start = self._need(8, "number")
            number: float = _DOUBLE.unpack_from(self.data, start)[0]
            return number
        if marker == BOOLEAN:
            return self.data[self._need(1, "boolean")] != 0
        if marker == STRING:
            return self._short_string("string")
        if marker == LONG_STRING:
            start = self._need(4, "long string length")
            (length,) = _U32.unpack_from(self.data, start)
            begin = self._need(length, "long string")
            return self._utf8(begin, length)
        if marker == NULL:
            return None
        if marker == UNDEFINED_MARKER:
            return UNDEFINED
        if marker == OBJECT:
            return self._properties(dict(), depth, "object")
        if marker == ECMA_ARRAY:
            self._need(4, "ECMA array count")
            return self._properties(EcmaArray(), depth, "ECMA array")
        if marker == STRICT_ARRAY:
            return self._strict_array(depth)
        if marker == DATE:
            start = self._need(10, "date")
            milliseconds, timezone = _DATE.unpack_from(self.data, start)
            return AmfDate(milliseconds, timezone)
        if marker == OBJECT_END:
            raise AmfError(f"unexpected object-end marker at offset {at}")
        name = _UNSUPPORTED_NAMES.get(marker)
        if name is not None:
            raise AmfError(f"unsupported AMF0 type {name} (0x{marker:02x}) at offset {at}")
        raise AmfError(f"unknown AMF0 type marker 0x{marker:02x} at offset {at}")

    def _properties(
        self, target: dict[str, AmfValue], depth: int, what: str
    ) -> dict[str, AmfValue]:
        if depth >= self.max_depth:
            raise AmfError(f"{what} at offset {self.pos} nests deeper than {self.max_depth}")
        while True:
            key_at = self._need(2, what + " key length")
            (length,) = _U16.unpack_from(self.data, key_at)
            if length == 0:
                end_at = self._need(1, what + " end marker")
                if self.data[end_at] != OBJECT_END:
                    raise AmfError(
                        f"empty key without object-end marker in {what} at offset {end_at}"
                    )
                return target
            start = self._need(length, what + " key")
            key = self._utf8(start, length)
            target[key] = self.value(depth + 1)

    def _strict_array(self, depth: int) -> list[AmfValue]:
        if depth >= self.max_depth:
            raise AmfError(f"strict array at offset {self.pos} nests deeper than {self.max_depth}")
        start = self._need(4, "strict array count")
        (count,) = _U32.unpack_from(self.data, start)
        remaining = len(self.data) - self.pos
        if count > remaining:  # every value takes at least its 1-byte marker
            raise AmfError(
                f"strict array at offset {start} declares {count} values "
                f"but only {remaining} bytes remain"
            )
        if count > self.items:
            raise AmfError("too many values (max_items exceeded)")
        return [self.value(depth + 1) for _ in range(count)]


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> AmfValue:
    """Decode exactly one value; trailing bytes are an :class:`AmfError`."""
    decoder = _Decoder(data, max_depth, max_items)
    value = decoder.value(0)
    if decoder.pos != len(decoder.data):
        raise AmfError(f"{len(decoder.data) - decoder.pos} trailing bytes after AMF0 value")
    return value


def decode_all(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> list[AmfValue]:
    """Decode back-to-back values until the data ends (an RTMP command body)."""
    decoder = _Decoder(data, max_depth, max_items)
    values: list[AmfValue] = []
    while decoder.pos < len(decoder.data):
        values.append(decoder.value(0))
    return values


def is_finite_integer(value: AmfValue) -> bool:
    """True when *value* is an AMF number holding a finite integral value."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and float(value).is_integer()
    )
