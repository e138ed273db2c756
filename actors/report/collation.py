"""SPEC §5's ``key(s)`` for a whole column at C speed: a code-point translation table, not Python.

The key is a function of each code point alone: NFKD decomposes code point by code point, its
canonical reordering moves only combining marks (canonical combining class ≠ 0), which the key
removes, and ``casefold`` has no context. So a string's key is its code points' keys joined.
Every code point's key is computed once per process by Python's own ``unicodedata``, the
reference's, so no other Unicode version is involved (Arrow's utf8proc follows a newer one), and
the column is translated in its UTF-8 bytes with NumPy: ASCII by Arrow's ``ascii_lower``, each
other code point by the table. (Arrow's ``utf8_normalize`` and a regex removing the marks took
2.6 times as long on realistic titles, before any correction for the Unicode versions.)

Each byte gets a few bytes of room (one, unless some key is longer than its code point: ``ß``
→ ``ss`` fits, Hangul syllables, ``½`` and ``ŉ`` need more), every key is written in its code
point's room, and the rest of the room, 0xFF bytes that no UTF-8 text holds, is dropped at once.
The few dozen code points whose key needs more than 3 bytes a byte (``ﷺ``, squared katakana
words such as ``㌀``) leave their strings to the reference.
"""

from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_PAD = 0xFF  # never a byte of UTF-8
_SEPARATOR = 0  # NUL: its own key, and in no other code point's key


@cache
def _scalar_values() -> np.ndarray:
    """Every Unicode scalar value (code points but surrogates), ascending."""
    every = np.arange(sys.maxunicode + 1, dtype=np.uint32)
    return every[(every < 0xD800) | (every > 0xDFFF)]


@cache
def _combining_marks() -> np.ndarray:
    """Code points with a non-zero canonical combining class, ascending."""
    points = _scalar_values()
    text = points.tobytes().decode("utf-32-le")
    return points[np.fromiter(map(unicodedata.combining, text), np.uint8, count=len(points)) != 0]


@cache
def _mark_deletions() -> dict[int, None]:
    """``str.translate`` table deleting every combining mark."""
    return dict.fromkeys(_combining_marks().tolist())


def collation_key(s: str) -> str:
    """SPEC §5 ``key(s)``, the reference: NFKD, combining marks dropped, casefolded."""
    return unicodedata.normalize("NFKD", s).translate(_mark_deletions()).casefold()


_ROOM = 3  # most bytes of key per byte of code point written by the table (Hangul needs 3)


@dataclass(frozen=True)
class _Table:
    """Per code point: its key as UTF-8 bytes to write in the code point's room."""

    keys: np.ndarray  # (code points, 4 * _ROOM) uint8: key(c), then _PAD
    growth: np.ndarray  # int16: the key's UTF-8 length minus c's (minus c's when it has no row)
    room: np.ndarray  # uint8: bytes of room per byte of c the key needs; above _ROOM, no row


def _text(points: np.ndarray) -> str:
    """The string of these code points."""
    return points.astype("<u4").tobytes().decode("utf-32-le")


@cache
def _table() -> _Table:
    """Every non-ASCII code point's key, all computed in one string (a fraction of a second, once)."""
    points = _scalar_values()[_scalar_values() >= 0x80]
    joined = np.zeros((len(points), 2), np.uint32)
    joined[:, 0] = points  # each code point, then _SEPARATOR
    decomposed = unicodedata.normalize("NFKD", _text(joined.ravel()[:-1]))
    decomposed = np.frombuffer(decomposed.encode("utf-32-le"), "<u4")
    is_mark = np.zeros(sys.maxunicode + 1, bool)
    is_mark[_combining_marks()] = True
    keys = np.frombuffer(_text(decomposed[~is_mark[decomposed]]).casefold().encode(), np.uint8)
    ends = np.r_[np.flatnonzero(keys == _SEPARATOR), len(keys)]
    starts = np.r_[0, ends[:-1] + 1]
    key_length = ends - starts
    own_length = 2 + (points >= 0x800) + (points >= 0x10000)
    room = np.maximum(1, -(-key_length // own_length))
    fits = room <= _ROOM
    rows = np.full((sys.maxunicode + 1, 4 * _ROOM), _PAD, np.uint8)
    for j in range(4 * _ROOM):
        write = fits & (key_length > j)
        rows[points[write], j] = keys[starts[write] + j]
    growth = np.zeros(sys.maxunicode + 1, np.int16)
    growth[points] = np.where(fits, key_length, 0) - own_length
    room_of = np.ones(sys.maxunicode + 1, np.uint8)
    room_of[points] = room
    return _Table(rows, growth, room_of)


def _code_points(text: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-ASCII code points of UTF-8 ``text``: where each begins, its length, its value."""
    lead = np.flatnonzero(text >= 0xC0)
    first = text[lead]
    length = (first >= 0xE0).astype(np.uint8) + (first >= 0xF0) + 2  # small: one per code point
    point = ((first & (0x7F >> length)).astype(np.uint32) << 6) | (text[lead + 1] & 0x3F)
    for j in (2, 3):
        more = np.flatnonzero(length > j)
        point[more] = (point[more] << 6) | (text[lead[more] + j] & 0x3F)
    return lead, length, point


def collation_keys(values: pa.Array) -> pa.Array:
    """``collation_key`` of each string (null stays null), translated in the UTF-8 bytes."""
    table = _table()
    lowered = pc.ascii_lower(values)
    validity, offsets_buffer, data = lowered.buffers()
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, width)[: lowered.offset + len(lowered) + 1].astype(np.int64)
    text = np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)
    lead, length, point = _code_points(text)
    room = table.room[point]
    spread = int(min(room.max(initial=1), _ROOM))  # bytes of room per byte of text
    roomy = np.full((len(text), spread), _PAD, np.uint8)
    roomy[:, 0] = text
    roomy = roomy.ravel()
    room_start = lead * spread if spread > 1 else lead
    for j in range(4 * spread):  # every code point has 2 bytes at least
        at = slice(None) if j < 2 * spread else np.flatnonzero(length * spread > j)
        roomy[room_start[at] + j] = table.keys[point[at], j]
    by_reference = np.searchsorted(offsets, lead[room > _ROOM], "right") - 1  # rows holding them
    offsets += np.r_[0, np.cumsum(table.growth[point], dtype=np.int64)][np.searchsorted(lead, offsets)]
    keys = pa.Array.from_buffers(
        values.type,
        len(values),
        [validity, pa.py_buffer(offsets.astype(width)), pa.py_buffer(roomy[roomy != _PAD])],
        lowered.null_count,
        lowered.offset,
    )
    return _by_reference(values, keys, by_reference)


def _by_reference(values: pa.Array, keys: pa.Array, rows: np.ndarray) -> pa.Array:
    """``keys`` but those of ``rows`` (indices), computed by ``collation_key``."""
    if not len(rows):
        return keys
    mask = np.zeros(len(values), bool)
    mask[rows] = True
    mask = pc.and_(pa.array(mask), pc.is_valid(values))
    fixed = [collation_key(v) for v in pc.filter(values, mask).to_pylist()]
    return pc.replace_with_mask(keys, mask, pa.array(fixed, values.type))
