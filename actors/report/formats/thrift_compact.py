"""Thrift's compact protocol, read and written generically: just enough to rewrite a Parquet
footer (a ``FileMetaData`` struct) without a schema, keeping every field it does not touch.

A struct is a list of ``[field id, type, value]``; lists and sets are ``(element type, [values])``,
maps ``(key type, value type, [(k, v)])``. Writing back what was read gives the same bytes.
"""

from __future__ import annotations

import struct as packing

STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)

Field = list  # [field id, type, value]


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def byte(self) -> int:
        self.at += 1
        return self.data[self.at - 1]

    def varint(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, kind: int):
        if kind in (TRUE, FALSE):  # a container's element: one byte
            return self.byte() == TRUE
        if kind == BYTE:
            return packing.unpack("b", bytes([self.byte()]))[0]
        if kind in (I16, I32, I64):
            return self.zigzag()
        if kind == DOUBLE:
            self.at += 8
            return packing.unpack("<d", self.data[self.at - 8 : self.at])[0]
        if kind == BINARY:
            n = self.varint()
            self.at += n
            return bytes(self.data[self.at - n : self.at])
        if kind in (LIST, SET):
            head = self.byte()
            size, element = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            return element, [self.value(element) for _ in range(size)]
        if kind == MAP:
            size = self.varint()
            types = self.byte() if size else 0
            k, v = types >> 4, types & 0x0F
            return k, v, [(self.value(k), self.value(v)) for _ in range(size)]
        if kind == STRUCT:
            return self.struct()
        raise ValueError(f"unknown compact type {kind}")

    def struct(self) -> list[Field]:
        fields, last = [], 0
        while (head := self.byte()) != STOP:
            kind, delta = head & 0x0F, head >> 4
            fid = last + delta if delta else self.zigzag()
            value = kind == TRUE if kind in (TRUE, FALSE) else self.value(kind)
            fields.append([fid, kind, value])
            last = fid
        return fields


def read_struct(data: bytes) -> list[Field]:
    return _Reader(data).struct()


class _Writer:
    def __init__(self):
        self.out = bytearray()

    def varint(self, n: int) -> None:
        while n >= 0x80:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def zigzag(self, n: int) -> None:
        self.varint((n << 1) ^ (n >> 63))

    def value(self, kind: int, value) -> None:
        if kind in (TRUE, FALSE):
            self.out.append(TRUE if value else FALSE)
        elif kind == BYTE:
            self.out += packing.pack("b", value)
        elif kind in (I16, I32, I64):
            self.zigzag(value)
        elif kind == DOUBLE:
            self.out += packing.pack("<d", value)
        elif kind == BINARY:
            self.varint(len(value))
            self.out += value
        elif kind in (LIST, SET):
            element, values = value
            if len(values) < 15:
                self.out.append(len(values) << 4 | element)
            else:
                self.out.append(0xF0 | element)
                self.varint(len(values))
            for v in values:
                self.value(element, v)
        elif kind == MAP:
            k, v, pairs = value
            self.varint(len(pairs))
            if pairs:
                self.out.append(k << 4 | v)
            for key, val in pairs:
                self.value(k, key)
                self.value(v, val)
        elif kind == STRUCT:
            self.struct(value)
        else:
            raise ValueError(f"unknown compact type {kind}")

    def struct(self, fields: list[Field]) -> None:
        last = 0
        for fid, kind, value in fields:
            if kind in (TRUE, FALSE):
                kind = TRUE if value else FALSE
            delta = fid - last
            if 0 < delta <= 15:
                self.out.append(delta << 4 | kind)
            else:
                self.out.append(kind)
                self.zigzag(fid)
            if kind not in (TRUE, FALSE):
                self.value(kind, value)
            last = fid
        self.out.append(STOP)


def write_struct(fields: list[Field]) -> bytes:
    writer = _Writer()
    writer.struct(fields)
    return bytes(writer.out)


def field(fields: list[Field], fid: int) -> Field | None:
    """The field with this id, or None."""
    return next((f for f in fields if f[0] == fid), None)
