"""Rows of an index's JSONL files read on demand, not loaded at open.

An index of 1M passages holds about 0.7 GB of passage text and 0.3 GB of
generated queries; read into Python objects at open that was 2.1 GB and 21 s
before the first search (measured; 18M passages: tens of GB). Search needs a
handful of rows per query, so ``JsonLines`` keeps only a table of line offsets
(8 bytes a row, built by one scan for newlines) over a read-only memory map and
parses a row when it is asked for. Iterating streams the file in order.

The memory map keeps the file readable after a rebuild swaps in a new data
folder, as the vector files' maps do, so a searcher never sees half of each.
"""
from __future__ import annotations

import json
import mmap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import numpy as np

from ..errors import IndexError_

T = TypeVar("T")

_SCAN_BYTES = 16 << 20  # newline scan chunk


def line_offsets(path: Path) -> np.ndarray:
    """Start of every line and the end of the last one: (rows + 1,) int64."""
    starts = [np.zeros(1, dtype=np.int64)]
    size = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_SCAN_BYTES)
            if not chunk:
                break
            nl = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
            starts.append(nl.astype(np.int64) + size + 1)
            size += len(chunk)
    offsets = np.concatenate(starts)
    if offsets[-1] != size:  # the last line has no newline: it still ends the file
        offsets = np.append(offsets, size)
    return offsets


class RowSequence(Sequence[T], Generic[T]):
    """Index and slice handling shared by the row sequences; subclasses give ``_get``."""

    def _get(self, i: int) -> T:
        raise NotImplementedError

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        n = len(self)
        if isinstance(i, slice):
            return [self._get(j) for j in range(*i.indices(n))]
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"row {i} out of range for {n} rows")
        return self._get(i)


class JsonLines(RowSequence[T]):
    """A read-only JSONL file as a sequence of converted rows, parsed on access."""

    def __init__(self, path: str | Path, convert: Callable[[dict[str, Any]], T]) -> None:
        self.path = Path(path)
        self._convert = convert
        self._offsets = line_offsets(self.path)
        self._map: mmap.mmap | None = None
        if self._offsets[-1] > 0:
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _row(self, i: int, raw: bytes) -> T:
        try:
            row = json.loads(raw)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            return self._convert(row)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
            raise IndexError_(f"{self.path}:{i + 1}: damaged line ({exc})", "rebuild the index") from None

    def _get(self, i: int) -> T:
        assert self._map is not None
        return self._row(i, self._map[int(self._offsets[i]):int(self._offsets[i + 1])])

    def __iter__(self) -> Iterator[T]:
        with open(self.path, "rb") as f:
            for i, raw in enumerate(f):
                if i >= len(self):
                    break
                yield self._row(i, raw)


class ConcatRows(RowSequence[T]):
    """Several row sequences one after the other (the shards of an index)."""

    def __init__(self, parts: Sequence[Sequence[T]]) -> None:
        self.parts = list(parts)
        self._offsets = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def _get(self, i: int) -> T:
        part = int(np.searchsorted(self._offsets, i, side="right")) - 1
        return self.parts[part][i - int(self._offsets[part])]

    def __iter__(self) -> Iterator[T]:
        for p in self.parts:
            yield from p
