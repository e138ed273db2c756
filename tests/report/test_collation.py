"""The vectorised collation keys equal SPEC §5's ``key(s)`` (the reference) on any text."""

from __future__ import annotations

import random
import sys
import unicodedata

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.report.collation import collation_key, collation_keys

# Code points where the key is not the lower case of the code point: casefold unlike lower
# (ß ẞ ς ſ ﬀ, Cherokee), Turkish I, marks alone and stacked (out of canonical order), Hangul
# syllables and jamo, keys longer than their code points (ŉ ½ 한, and ﷺ ㌀ beyond the table's
# room), full-width letters, NFKD yielding a final sigma (ϲ), letters newer than Python's Unicode.
TRICKY = list("ßẞςΣσſﬀﬁﬃİıIiᎠꭰꮿǅǄǆŉ½㎏ﷺ㌀ＡｚÅÅΐϲ한글각\u0301\u0323\u0308\u0345\u0334\u05c8\u0f73\u0f81\u1c89")
ASCII_AND_TRICKY = st.sampled_from(TRICKY) | st.characters(max_codepoint=0x7F)
UTF8 = st.characters(codec="utf-8")  # every code point but surrogates, which UTF-8 cannot hold
MANY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=150, deadline=None)
# Python's Unicode assigns nothing outside these planes (the rest is unassigned or private use).
ASSIGNED_PLANES = [*range(0x40000), *range(0xE0000, 0xF0000)]


STRING = pa.string()


def keys(values: list[str | None], type_: pa.DataType = STRING) -> list[str | None]:
    return collation_keys(pa.array(values, type_)).to_pylist()


def reference(values: list[str | None]) -> list[str | None]:
    return [None if v is None else collation_key(v) for v in values]


@MANY
@given(st.lists(st.none() | st.text(UTF8, max_size=30), max_size=20))
def test_any_text(values):
    assert keys(values) == reference(values)


@MANY
@given(st.lists(st.text(ASCII_AND_TRICKY | UTF8, max_size=30), max_size=20))
def test_text_dense_in_tricky_code_points(values):
    assert keys(values) == reference(values)


@SOME
@given(st.lists(st.none() | st.text(ASCII_AND_TRICKY, max_size=12), min_size=1, max_size=20), st.data())
def test_slices_and_large_strings(values, data):
    start = data.draw(st.integers(0, len(values)))
    stop = data.draw(st.integers(start, len(values)))
    for type_ in (pa.string(), pa.large_string()):
        sliced = pa.array(values, type_).slice(start, stop - start)
        assert collation_keys(sliced).to_pylist() == reference(values[start:stop])
        assert collation_keys(sliced).type == type_


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("ß", "ss"),
        ("ẞ", "ss"),
        ("Straße", "strasse"),
        ("ΟΔΟΣ", "οδοσ"),
        ("ὀδός", "οδοσ"),
        ("ς", "σ"),
        ("ﬁ", "fi"),
        ("ﬀ", "ff"),
        ("ﬃ", "ffi"),
        ("ǅ", "dz"),
        ("İ", "i"),
        ("ı", "ı"),
        ("Istanbul", "istanbul"),
        ("Ꭰ", "Ꭰ"),
        ("ꭰ", "Ꭰ"),
        ("e\u0301", "e"),
        ("é", "e"),
        ("\u0301", ""),
        ("a\u0308\u0301\u0323", "a"),
        ("Ǘ", "u"),
        ("한", "\u1112\u1161\u11ab"),
        ("\u1112\u1161\u11ab", "\u1112\u1161\u11ab"),
        ("ＡＢｃ", "abc"),
        ("½", "1⁄2"),
        ("ŉ", "ʼn"),
        ("㌀", "アハート"),
        ("ﷺ", "صلى الله عليه وسلم"),
        ("Introdução à Programação — Módulo 1", "introducao a programacao — modulo 1"),
        ("", ""),
    ],
)
def test_named_cases(text, key):
    assert collation_key(text) == key
    assert keys([text, f"x {text} y", None]) == [key, f"x {key} y", None]


def test_many_rows():
    """Enough rows that every key's room, growth and padding shift many offsets after it."""
    rng = random.Random(5)
    alphabet = TRICKY + list("aAçÇãõéÉ —-0123456789xyz")
    values = ["".join(rng.choices(alphabet, k=rng.randint(0, 40))) for _ in range(20_000)]
    assert keys(values) == reference(values)


def test_nulls_stay_null():
    assert keys([None, None]) == [None, None]
    assert keys([]) == []
    assert keys(["", None, "É"]) == ["", None, "e"]


def test_every_code_point_alone_and_between_marks():
    """One string per code point (every one of the planes with assigned code points, a sample of
    the others), and code points between marks, which the reference reorders and drops."""
    points = [cp for cp in ASSIGNED_PLANES if not 0xD800 <= cp <= 0xDFFF] + list(range(0x40000, 0xE0000, 97))
    points += list(range(0xF0000, sys.maxunicode + 1, 97))
    alone = [chr(cp) for cp in points]
    assert keys(alone) == [collation_key(c) for c in alone]
    wrapped = [f"\u0345{c}\u0334" for c in alone[::5]]
    assert keys(wrapped) == [collation_key(w) for w in wrapped]


def test_reference_is_spec_key():
    """The reference spells SPEC §5 out: NFKD, every combining character dropped, casefold."""
    for text in ["Ação", "ὀδός", "ß", "ﬃ", "a\u0301\u0323", "한국"]:
        decomposed = unicodedata.normalize("NFKD", text)
        assert collation_key(text) == "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
