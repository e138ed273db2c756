"""SPEC §5's ``key(s)`` for a whole column at C speed: a code-point translation table, not Python.

The key is a function of each code point alone: NFKD decomposes code point by code point, its
canonical reordering moves only combining marks (canonical combining class ≠ 0), which the key
removes, and ``casefold`` has no context. So a string's key is its code points' keys joined.
Each code point's key is computed once per process by Python's own ``unicodedata`` (the
reference's), so no other Unicode version is involved; the column is then translated in its
UTF-8 bytes with NumPy. Arrow's ``utf8_normalize`` and regex kernels were measured slower than
per-string Python on real titles, and their utf8proc follows another Unicode version.

Each key is written in its code point's place: one no longer in UTF-8 (``á`` → ``a``, ``ß`` →
``ss``, ``ς`` → ``σ``, Cherokee, ``ﬃ``, ``ǅ``) padded with 0xFF bytes, which no UTF-8 text holds,
and all padding dropped at once; for a longer one (Hangul syllables, some Indic vowel signs,
``½``, ``ŉ``, Arabic ligatures) room is made first.
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


@dataclass(frozen=True)
class _Table:
    """Each non-ASCII code point's key, as UTF-8 bytes to write in the code point's place."""

    short: np.ndarray  # (code points, 4) uint8: key(c), then _PAD up to c's own UTF-8 length
    padding: np.ndarray  # uint8 per code point: how many _PAD bytes its ``short`` row holds
    growth: np.ndarray  # uint16 per code point: how many bytes longer than c its key is, if it is
    start: np.ndarray  # int64 per code point: where its key begins in ``keys``
    keys: np.ndarray  # uint8: every key, one after the other


def _text(points: np.ndarray) -> str:
    return points.astype("<u4").tobytes().decode("utf-32-le")


def _utf8_length(points: np.ndarray) -> np.ndarray:
    return 2 + (points >= 0x800) + (points >= 0x10000)  # for non-ASCII code points


@cache
def _table() -> _Table:
    """Every non-ASCII code point's key, all computed in one string (a fraction of a second, once)."""
    points = _scalar_values()[_scalar_values() >= 0x80]
    joined = np.zeros((len(points), 2), np.uint32)
    joined[:, 0] = points  # each code point, then _SEPARATOR
    decomposed = np.frombuffer(unicodedata.normalize("NFKD", _text(joined.ravel()[:-1])).encode("utf-32-le"), "<u4")
    is_mark = np.zeros(sys.maxunicode + 1, bool)
    is_mark[_combining_marks()] = True
    keys = np.frombuffer(_text(decomposed[~is_mark[decomposed]]).casefold().encode(), np.uint8)
    ends = np.r_[np.flatnonzero(keys == _SEPARATOR), len(keys)]
    starts = np.r_[0, ends[:-1] + 1]
    key_length = ends - starts
    own_length = _utf8_length(points)
    fits = key_length <= own_length
    short = np.full((sys.maxunicode + 1, 4), _PAD, np.uint8)
    for j in range(4):
        write = fits & (key_length > j)
        short[points[write], j] = keys[starts[write] + j]
    padding = np.zeros(sys.maxunicode + 1, np.uint8)
    padding[points[fits]] = own_length[fits] - key_length[fits]
    growth = np.zeros(sys.maxunicode + 1, np.uint16)
    growth[points[~fits]] = key_length[~fits] - own_length[~fits]
    start = np.zeros(sys.maxunicode + 1, np.int64)
    start[points] = starts
    return _Table(short, padding, growth, start, keys)


def _code_points(text: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-ASCII code points of UTF-8 ``text``: where each begins, its length, its value."""
    lead = np.flatnonzero(text >= 0xC0)
    first = text[lead]
    length = 2 + (first >= 0xE0) + (first >= 0xF0)
    point = ((first & (0x7F >> length)).astype(np.uint32) << 6) | (text[lead + 1] & 0x3F)
    for j in (2, 3):
        more = np.flatnonzero(length > j)
        point[more] = (point[more] << 6) | (text[lead[more] + j] & 0x3F)
    return lead, length, point


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``starts[i] + k`` for every ``k < lengths[i]``, all ranges one after the other."""
    firsts = np.cumsum(lengths) - lengths
    return np.repeat(starts - firsts, lengths) + np.arange(lengths.sum())


def collation_keys(values: pa.Array) -> pa.Array:
    """``collation_key`` of each string (null stays null), translated in the UTF-8 bytes."""
    table = _table()
    lowered = pc.ascii_lower(values)
    validity, offsets_buffer, data = lowered.buffers()
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, width)[:lowered.offset + len(lowered) + 1].astype(np.int64)
    text = np.frombuffer(data, np.uint8).copy() if data is not None else np.empty(0, np.uint8)  # Arrow may share it
    lead, length, point = _code_points(text)
    key = table.short[point]
    text[lead], text[lead + 1] = key[:, 0], key[:, 1]
    for j in (2, 3):
        more = np.flatnonzero(length > j)
        text[lead[more] + j] = key[more, j]
    growth = table.growth[point]
    if growth.any():  # room after each code point whose key is longer, then its key written there
        grows = np.flatnonzero(growth)
        text = np.insert(text, np.repeat(lead[grows] + length[grows], growth[grows]), _PAD)
        before = np.r_[0, np.cumsum(growth, dtype=np.int64)]
        offsets += before[np.searchsorted(lead, offsets)]
        lead += before[:-1]
        key_length = length[grows] + growth[grows]
        text[_ranges(lead[grows], key_length)] = table.keys[_ranges(table.start[point[grows]], key_length)]
    offsets -= np.r_[0, np.cumsum(table.padding[point], dtype=np.int64)][np.searchsorted(lead, offsets)]
    return pa.Array.from_buffers(values.type, len(values), [validity, pa.py_buffer(offsets.astype(width)),
                                                            pa.py_buffer(text[text != _PAD])],
                                 lowered.null_count, lowered.offset)
