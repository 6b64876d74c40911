"""AMF0: the value encoding of RTMP commands and metadata.

Python mapping (decode -> encode round trips exactly):

=====================  ============  =============================================
AMF0 type              marker        Python
=====================  ============  =============================================
number                 0x00          ``float`` (``int`` is encoded as a number too)
boolean                0x01          ``bool``
string / long string   0x02 / 0x0C   ``str`` (long string when > 65535 UTF-8 bytes)
object                 0x03          ``dict[str, Any]``
null                   0x05          ``None``
undefined              0x06          :data:`UNDEFINED`
ECMA array             0x08          :class:`ECMAArray` (a ``dict`` subclass)
object end             0x09          only as the terminator inside objects / arrays
strict array           0x0A          ``list``
date                   0x0B          :class:`Date`
XML document           0x0F          decoded as ``str`` (encoded back as a string)
typed object           0x10          decoded as ``dict`` (class name dropped)
=====================  ============  =============================================

Movie clip, reference, unsupported, record set and the AMF3 switch are refused. Every length
is checked against the bytes present before anything is allocated, nesting is limited
(:data:`MAX_DEPTH`), and every decoding failure raises :class:`RTMPProtocolError`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ...errors import RTMPProtocolError

__all__ = [
    "MAX_DEPTH",
    "UNDEFINED",
    "Date",
    "ECMAArray",
    "Undefined",
    "decode",
    "decode_value",
    "encode",
    "encode_value",
]

MAX_DEPTH: Final = 32  # nested objects / arrays
MAX_ITEMS: Final = 65_536  # values in one decode() call, all levels together

NUMBER, BOOLEAN, STRING, OBJECT, MOVIECLIP, NULL, UNDEFINED_MARKER, REFERENCE = range(8)
ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, LONG_STRING, UNSUPPORTED = range(8, 14)
RECORDSET, XML_DOCUMENT, TYPED_OBJECT, AVMPLUS = range(14, 18)

_F64 = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE = struct.Struct(">dh")
_END = b"\x00\x00\x09"


class Undefined:
    """The AMF0 ``undefined`` value (distinct from ``null``, which is ``None``)."""

    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = Undefined()


class ECMAArray(dict[str, Any]):
    """An associative array (``onMetaData`` usually is one); behaves as a plain dict."""


@dataclass(frozen=True, slots=True)
class Date:
    """An AMF0 date: milliseconds since the Unix epoch and a (legacy, ignored) zone in minutes."""

    ms: float
    timezone: int = 0


class _State:
    __slots__ = ("data", "items", "max_depth")

    def __init__(self, data: bytes | bytearray | memoryview, max_depth: int) -> None:
        self.data = data
        self.items = 0
        self.max_depth = max_depth


def _error(what: str, pos: int) -> RTMPProtocolError:
    return RTMPProtocolError(f"AMF0: {what} at offset {pos}")


def _need(st: _State, pos: int, n: int, what: str) -> None:
    if pos + n > len(st.data):
        raise _error(f"truncated {what}", pos)


def _utf8(st: _State, pos: int, n: int, what: str) -> str:
    _need(st, pos, n, what)
    try:
        return bytes(st.data[pos : pos + n]).decode("utf-8")
    except UnicodeDecodeError:
        raise _error(f"{what} is not UTF-8", pos) from None


def _short_str(st: _State, pos: int, what: str) -> tuple[str, int]:
    _need(st, pos, 2, what + " length")
    (n,) = _U16.unpack_from(st.data, pos)
    return _utf8(st, pos + 2, n, what), pos + 2 + n


def _props(st: _State, pos: int, depth: int, out: dict[str, Any]) -> int:
    """Key/value pairs up to the empty-key + object-end terminator."""
    data = st.data
    while True:
        _need(st, pos, 2, "property name length")
        (n,) = _U16.unpack_from(data, pos)
        if n == 0:
            _need(st, pos, 3, "object end")
            if data[pos + 2] != OBJECT_END:
                raise _error("empty property name without object end", pos)
            return pos + 3
        key = _utf8(st, pos + 2, n, "property name")
        out[key], pos = _value(st, pos + 2 + n, depth)


def _value(st: _State, pos: int, depth: int) -> tuple[Any, int]:
    data = st.data
    _need(st, pos, 1, "marker")
    st.items += 1
    if st.items > MAX_ITEMS:
        raise _error("too many values", pos)
    marker = data[pos]
    pos += 1
    if marker == NUMBER:
        _need(st, pos, 8, "number")
        return _F64.unpack_from(data, pos)[0], pos + 8
    if marker == STRING:
        return _short_str(st, pos, "string")
    if marker == NULL:
        return None, pos
    if marker == BOOLEAN:
        _need(st, pos, 1, "boolean")
        return data[pos] != 0, pos + 1
    if marker in (OBJECT, ECMA_ARRAY, TYPED_OBJECT, STRICT_ARRAY):
        if depth >= st.max_depth:
            raise _error("nesting too deep", pos)
        if marker == STRICT_ARRAY:
            _need(st, pos, 4, "strict array count")
            (count,) = _U32.unpack_from(data, pos)
            pos += 4
            if count > len(data) - pos:  # every value takes at least one byte
                raise _error("strict array count larger than the data", pos)
            items: list[Any] = []
            for _ in range(count):
                item, pos = _value(st, pos, depth + 1)
                items.append(item)
            return items, pos
        obj: dict[str, Any]
        if marker == ECMA_ARRAY:
            _need(st, pos, 4, "ECMA array count")
            pos += 4  # the count is a hint only; the terminator ends the array
            obj = ECMAArray()
        else:
            if marker == TYPED_OBJECT:
                _, pos = _short_str(st, pos, "class name")
            obj = {}
        return obj, _props(st, pos, depth + 1, obj)
    if marker == UNDEFINED_MARKER:
        return UNDEFINED, pos
    if marker in (LONG_STRING, XML_DOCUMENT):
        _need(st, pos, 4, "long string length")
        (n,) = _U32.unpack_from(data, pos)
        return _utf8(st, pos + 4, n, "long string"), pos + 4 + n
    if marker == DATE:
        _need(st, pos, 10, "date")
        ms, tz = _DATE.unpack_from(data, pos)
        return Date(ms, tz), pos + 10
    if marker == OBJECT_END:
        raise _error("object end outside an object", pos - 1)
    raise _error(f"unsupported marker 0x{marker:02x}", pos - 1)


def decode_value(
    data: bytes | bytearray | memoryview, pos: int = 0, *, max_depth: int = MAX_DEPTH
) -> tuple[Any, int]:
    """Decode one value at ``pos``; return it and the offset just past it."""
    return _value(_State(data, max_depth), pos, 0)


def decode(data: bytes | bytearray | memoryview, *, max_depth: int = MAX_DEPTH) -> list[Any]:
    """Decode every value in ``data`` (a command or data message payload)."""
    st = _State(data, max_depth)
    out: list[Any] = []
    pos = 0
    while pos < len(data):
        value, pos = _value(st, pos, 0)
        out.append(value)
    return out


def _enc_str(s: str, out: bytearray) -> None:
    raw = s.encode("utf-8")
    if len(raw) <= 0xFFFF:
        out.append(STRING)
        out += _U16.pack(len(raw))
    else:
        if len(raw) > 0xFFFFFFFF:
            raise ValueError("AMF0 string longer than 4 GiB")
        out.append(LONG_STRING)
        out += _U32.pack(len(raw))
    out += raw


def _enc_props(obj: Mapping[str, Any], out: bytearray, depth: int) -> None:
    for key, item in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"AMF0 object keys must be str, not {type(key).__name__}")
        raw = key.encode("utf-8")
        if not raw or len(raw) > 0xFFFF:
            raise ValueError("AMF0 property names must be 1..65535 UTF-8 bytes")
        out += _U16.pack(len(raw))
        out += raw
        _enc(item, out, depth)
    out += _END


def _enc(value: Any, out: bytearray, depth: int) -> None:
    if depth >= MAX_DEPTH and isinstance(value, Mapping | list | tuple):
        raise ValueError(f"AMF0 containers nest at most {MAX_DEPTH} deep")
    if value is None:
        out.append(NULL)
    elif isinstance(value, bool):
        out.append(BOOLEAN)
        out.append(1 if value else 0)
    elif isinstance(value, int | float):
        out.append(NUMBER)
        out += _F64.pack(float(value))
    elif isinstance(value, str):
        _enc_str(value, out)
    elif isinstance(value, ECMAArray):
        out.append(ECMA_ARRAY)
        out += _U32.pack(len(value))
        _enc_props(value, out, depth + 1)
    elif isinstance(value, Mapping):
        out.append(OBJECT)
        _enc_props(value, out, depth + 1)
    elif isinstance(value, list | tuple):
        out.append(STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _enc(item, out, depth + 1)
    elif isinstance(value, Undefined):
        out.append(UNDEFINED_MARKER)
    elif isinstance(value, Date):
        out.append(DATE)
        out += _DATE.pack(value.ms, value.timezone)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMF0")


def encode_value(value: Any) -> bytes:
    """Encode one value. Raises ``TypeError``/``ValueError`` for values AMF0 cannot carry."""
    out = bytearray()
    _enc(value, out, 0)
    return bytes(out)


def encode(*values: Any) -> bytes:
    """Encode values back to back, as a command or data message payload."""
    out = bytearray()
    for value in values:
        _enc(value, out, 0)
    return bytes(out)
