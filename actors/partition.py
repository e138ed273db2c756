"""Cut the sorted report into render chunks that follow school groups.

Chunks depend only on the data and the chunk size, never on how many actors will render them,
so the file is byte-identical whatever the pool size. A chunk never crosses a sheet boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from actors.xlsx.sheet import MAX_SHEET_ROWS

SHEET_DATA_ROWS = MAX_SHEET_ROWS - 1  # one row per sheet is the header


@dataclass(frozen=True)
class Chunk:
    sheet: int  # 0-based sheet index
    offset: int  # first row in the report table
    length: int
    first_row: int  # 1-based spreadsheet row of the chunk's first data row


def group_boundaries(keys: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Indices where a new school group starts (the report is sorted by school)."""
    keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    if pa.types.is_dictionary(keys.type):  # distinct entries: equal values ⇔ equal indices
        keys = keys.indices if _distinct(keys.dictionary) else keys.cast(keys.type.value_type)
    n = len(keys)
    if n < 2:
        return np.empty(0, dtype=np.int64)
    a, b = keys.slice(0, n - 1), keys.slice(1)
    changed = pc.fill_null(pc.not_equal(a, b), True)
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    changed = pc.and_(changed, pc.invert(both_null))
    return np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1


def _distinct(values: pa.Array) -> bool:
    return len(pc.unique(values)) == len(values)


def plan_chunks(
    schools: pa.ChunkedArray | pa.Array, chunk_rows: int, sheet_rows: int = SHEET_DATA_ROWS
) -> list[Chunk]:
    """Greedy cut: each chunk ends at the last school boundary within ``chunk_rows`` rows, or at
    ``chunk_rows`` when one school is bigger than that; sheet ends are always cut points."""
    n = len(schools)
    bounds = group_boundaries(schools)
    chunks: list[Chunk] = []
    for sheet, sheet_start in enumerate(range(0, max(n, 1), sheet_rows)):
        sheet_end = min(n, sheet_start + sheet_rows)
        start = sheet_start
        while start < sheet_end:
            limit = min(sheet_end, start + chunk_rows)
            if limit < sheet_end:
                i = np.searchsorted(bounds, limit, side="right") - 1
                if i >= 0 and bounds[i] > start:
                    limit = int(bounds[i])
            chunks.append(Chunk(sheet, start, limit - start, start - sheet_start + 2))
            start = limit
    return chunks


def sheet_count(rows: int, sheet_rows: int = SHEET_DATA_ROWS) -> int:
    return max(1, -(-rows // sheet_rows))
