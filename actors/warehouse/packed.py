"""Many result rows per wire row, for a driver that decodes one row at a time in Python.

``redshift-connector`` turns every DataRow message into Python objects, about 3 µs a row whatever
its width: 2.3 million rows of a 1,000,000-course report cost ~8 s of one core, more than the
warehouse takes to compute them. So the server packs the rows: each row becomes one line of its
values as text (fields split by U+001F, text columns last), ``LISTAGG`` joins up to
``per_chunk`` lines with line feeds into one VARCHAR, and Arrow's CSV reader (no quoting: no
field holds a separator) splits and converts them back here; the driver sees one row per chunk.
Measured at 1,000,000 courses on the PostgreSQL stand-in: the fetch went from 13.6 s to 8.5 s,
the driver's share from ~8 s to ~0.2 s; unpacking takes ~0.7 s, and the server works ~1.9 s more
than for the plain rows (5.9 s): building the lines, numbering them, grouping.

Redshift's ``LISTAGG`` fails above 65,535 bytes, so a chunk's size is bounded: a row whose text
columns are NULL, longer than :data:`TEXT_BYTES` together, or hold a separator or a line break
is *loose*: it travels alone, in a chunk of its own, with its text columns as columns of the
result, exactly as stored. Numbers and instants are decimal text, so their lines are bounded by construction.
``ROW_NUMBER`` is partitioned by the key modulo 64 so that Redshift numbers the rows on every
slice (an unpartitioned window runs on one); no order is asked for, since any grouping into
chunks will do (the report orders its rows itself). PostgreSQL sorts by the slot all the same:
measured, that is 0.7 s cheaper than numbering without a partition, whose grouping then spills.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.csv as csv

# Between fields the ASCII unit separator (rare in text, and checked for); between lines a line
# feed, so that a block of chunks is CSV as it comes (LISTAGG's delimiter must be a constant: the
# SQL holds a raw line feed between quotes).
FIELD, LINE = "\x1f", "\n"
TEXT_BYTES = 600  # a packed row's text columns together, at most
LIMIT = 65_535  # Redshift's LISTAGG result, bytes
_NUMBER_BYTES = 20  # a BIGINT as decimal text: "-9223372036854775808"
_STAMP_BYTES = 26  # TO_CHAR(…, 'YYYY-MM-DD HH24:MI:SS.US'), years 1–9999
_STAMP_FORMAT = "YYYY-MM-DD HH24:MI:SS.US"
SLOTS = 64  # ROW_NUMBER partitions; loose rows are in slot SLOTS


def line_bytes(schema: pa.Schema) -> int:
    """The longest line a packed row of ``schema`` can make, its separators included."""
    widths = [_STAMP_BYTES if pa.types.is_timestamp(f.type) else _NUMBER_BYTES for f in _fixed(schema)]
    texts = TEXT_BYTES if _texts(schema) else 0
    return sum(widths) + texts + len(schema) - 1 + len(LINE)


def per_chunk(schema: pa.Schema) -> int:
    """How many rows of ``schema`` fit in one chunk under Redshift's LISTAGG limit."""
    return LIMIT // line_bytes(schema)


def packed_sql(sql: str, schema: pa.Schema) -> str:
    """``sql`` (its columns named and typed as ``schema``, the first an integer key) as chunks:
    columns ``slot``, ``chunk`` and, with text columns, each of them (set on loose rows only)."""
    key, texts, sep = schema.names[0], _texts(schema), f"CHR({ord(FIELD)})"
    fixed = f" || {sep} || ".join(f"COALESCE({_as_text(f)}, '')" for f in _fixed(schema))  # never empty: the key is set
    plain = " AND ".join(
        [
            " + ".join(f"OCTET_LENGTH(q.{t.name})" for t in texts) + f" <= {TEXT_BYTES}",
            *(f"STRPOS(q.{t.name}, CHR({ord(c)})) = 0" for t in texts for c in (FIELD, LINE, "\r")),
        ]
    )  # a NULL text makes the test NULL, hence loose
    slot = f"CASE WHEN {plain} THEN ABS(q.{key} % {SLOTS}) ELSE {SLOTS} END" if texts else f"ABS(q.{key} % {SLOTS})"
    line = " || ".join(["r.fixed", *(f"{sep} || r.{t.name}" for t in texts)])
    bucket = f"(ROW_NUMBER() OVER (PARTITION BY r.slot) - 1) / {per_chunk(schema)}"
    inner = ", ".join([f"q.{key}", f"{fixed} AS fixed", *(f"q.{t.name}" for t in texts), f"{slot} AS slot"])
    loose: list[str] = []
    if texts:  # loose rows: one per chunk (bucket = key), the line without its texts, the texts apart
        loose = [f"CASE WHEN r.slot < {SLOTS} THEN NULL ELSE r.{t.name} END AS {t.name}" for t in texts]
        line = f"CASE WHEN r.slot < {SLOTS} THEN {line} ELSE r.fixed END"
        bucket = f"CASE WHEN r.slot < {SLOTS} THEN {bucket} ELSE r.{key} END"
    middle = ", ".join(["r.slot", f"{line} AS line", *loose, f"{bucket} AS bucket"])
    outer = ", ".join(
        ["p.slot", f"LISTAGG(p.line, '{LINE}') AS chunk", *(f"MAX(p.{t.name}) AS {t.name}" for t in texts)]
    )
    return f"SELECT {outer} FROM (SELECT {middle} FROM (SELECT {inner} FROM ({sql}) q) r) p GROUP BY p.slot, p.bucket"


def unpack(rows: Sequence[Sequence[object]], schema: pa.Schema) -> pa.Table:
    """One FETCH block of :func:`packed_sql`'s rows as a ``schema`` table (in no particular order)."""
    if not rows:
        return schema.empty_table()
    columns = list(zip(*rows, strict=True))
    loose = [slot == SLOTS for slot in columns[0]]
    if not any(loose):
        return _lines(columns[1], schema, {})
    plain = _lines([c for c, odd in zip(columns[1], loose) if not odd], schema, {})
    given = {
        t.name: pa.array([v for v, odd in zip(values, loose) if odd], t.type)
        for t, values in zip(_texts(schema), columns[2:], strict=True)
    }
    return pa.concat_tables([plain, _lines([c for c, odd in zip(columns[1], loose) if odd], schema, given)])


def _lines(chunks: Sequence[str], schema: pa.Schema, given: dict[str, pa.Array]) -> pa.Table:
    """Chunks of lines of fields in :func:`_order` → typed columns; ``given``: text columns that
    came apart. Arrow's CSV reader splits and converts them (no quoting: no field of a packed
    line holds a separator or a line break): 0.74 s for 1M courses, where splitting with string
    kernels and casting took 1.05 s."""
    fields = [f for f in _order(schema) if f.name not in given]
    if not chunks:
        return schema.empty_table()
    text = LINE.join(chunks).encode()
    table = csv.read_csv(
        pa.py_buffer(text),
        read_options=csv.ReadOptions(column_names=[f.name for f in fields]),
        parse_options=csv.ParseOptions(delimiter=FIELD, quote_char=False, escape_char=False),
        convert_options=csv.ConvertOptions(
            column_types={f.name: f.type for f in fields}, null_values=[""], strings_can_be_null=False
        ),
    )  # "" is NULL for numbers and instants (never written so), "" for texts
    values = {**{f.name: table[f.name] for f in fields}, **given}
    return pa.table([values[name] for name in schema.names], schema=schema)


def _order(schema: pa.Schema) -> list[pa.Field]:
    return [*_fixed(schema), *_texts(schema)]


def _fixed(schema: pa.Schema) -> list[pa.Field]:
    return [f for f in schema if not pa.types.is_string(f.type)]


def _texts(schema: pa.Schema) -> list[pa.Field]:
    return [f for f in schema if pa.types.is_string(f.type)]


def _as_text(field: pa.Field) -> str:
    if pa.types.is_timestamp(field.type):
        return f"TO_CHAR(q.{field.name}, '{_STAMP_FORMAT}')"
    if pa.types.is_integer(field.type):
        return f"CAST(q.{field.name} AS VARCHAR)"
    raise TypeError(f"no packed form for {field}")
