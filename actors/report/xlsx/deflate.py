"""Raw deflate parts that concatenate into one valid stream.

Each part ends with a sync flush (byte-aligned, no final-block bit), so parts compressed on
different actors can be laid end to end and closed with one empty final block; their CRC-32s
combine arithmetically. ISA-L (``isal``) was picked over zlib for speed at equal output validity.
"""

from __future__ import annotations

from dataclasses import dataclass

from isal import isal_zlib

LEVEL = 1  # ISA-L levels 0..3; 1 is a good speed/size balance for XML (see bench/)
FINAL_BLOCK = b"\x03\x00"  # an empty fixed-Huffman block with BFINAL set


@dataclass(frozen=True)
class DeflatedPart:
    """A piece of one zip member: compressed bytes plus what the zip headers need."""

    data: bytes
    crc: int
    size: int  # uncompressed length


class PartWriter:
    """Builds one :class:`DeflatedPart` from pieces written in turn, so the uncompressed text
    never has to exist whole."""

    def __init__(self, level: int = LEVEL):
        self._comp = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
        self._out: list[bytes] = []
        self._crc = self._size = 0

    def write(self, raw) -> None:
        self._out.append(self._comp.compress(raw))
        self._crc = isal_zlib.crc32(raw, self._crc)
        self._size += len(memoryview(raw).cast("B"))

    def finish(self) -> DeflatedPart:
        self._out.append(self._comp.flush(isal_zlib.Z_SYNC_FLUSH))
        return DeflatedPart(b"".join(self._out), self._crc, self._size)


def deflate_part(raw, level: int = LEVEL) -> DeflatedPart:
    """Compress ``raw`` (any bytes-like) into a concatenable raw-deflate fragment."""
    writer = PartWriter(level)
    writer.write(raw)
    return writer.finish()


def combine(parts: list[DeflatedPart]) -> tuple[int, int, int]:
    """(crc, uncompressed size, compressed size incl. the final block) of parts laid end to end."""
    crc, size, csize = 0, 0, len(FINAL_BLOCK)
    for p in parts:
        crc = isal_zlib.crc32_combine(crc, p.crc, p.size)
        size += p.size
        csize += len(p.data)
    return crc, size, csize
