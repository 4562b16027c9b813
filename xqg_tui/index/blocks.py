"""Exact search in row blocks: bounded memory over memory-mapped vectors.

An index whose fused matrix does not fit in memory is scored block by block:
each block of rows is fused for the requested spec (``(1 - alpha) P + sum_l
alpha w_l A_l`` on those rows only), scored against the query batch, reduced to
its top k, and the per-block top-k lists are merged. The result is the same
ranking as scoring the whole fused matrix at once.

``RowConcat`` presents several arrays (the shards of a sharded index) as one
array along the rows without copying, so block code (and code written for one
array) reads across shard boundaries transparently.
"""
from __future__ import annotations

import os
import re
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import XQGError

MEMORY_ENV = "XQG_SEARCH_MEMORY"
DEFAULT_MEMORY = 4 << 30  # never more than half the physical memory (see memory_budget)
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"512M"``, ``"2G"``, ``"1.5GiB"`` or plain bytes to a byte count."""
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise XQGError(f"{MEMORY_ENV}: not a size: {text!r} (use e.g. 512M or 2G)")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    value = int(float(m.group(1)) * scale)
    if value <= 0:
        raise XQGError(f"{MEMORY_ENV}: must be positive, not {text!r}")
    return value


def memory_budget() -> int:
    """Bytes the searcher may use for dense matrices: ``XQG_SEARCH_MEMORY`` when
    set, else min(4 GiB, half of physical memory)."""
    env = os.environ.get(MEMORY_ENV)
    if env:
        return parse_size(env)
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return DEFAULT_MEMORY
    return max(64 << 20, min(DEFAULT_MEMORY, physical // 2))


class RowConcat:
    """Read-only concatenation of arrays along axis 0, without copying.

    Supports what the engine does with index arrays: ``shape``/``dtype``/``len``,
    an integer row, a row slice (step 1) optionally followed by more indices
    (``a[3:9, :2]``), and ``np.asarray`` (which materialises; avoid on big data).
    """

    def __init__(self, parts: Sequence[Any]) -> None:
        if not parts:
            raise ValueError("RowConcat needs at least one array")
        self.parts = list(parts)
        tail = tuple(self.parts[0].shape[1:])
        for p in self.parts:
            if tuple(p.shape[1:]) != tail:
                raise ValueError(f"RowConcat: shapes {[x.shape for x in self.parts]} do not line up")
        self.offsets = np.cumsum([0] + [int(p.shape[0]) for p in self.parts])
        self.shape = (int(self.offsets[-1]),) + tail
        self.dtype = np.result_type(*[p.dtype for p in self.parts])
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _locate(self, row: int) -> tuple[int, int]:
        if row < 0:
            row += self.shape[0]
        if not 0 <= row < self.shape[0]:
            raise IndexError(f"row {row} out of range for {self.shape[0]} rows")
        part = int(np.searchsorted(self.offsets, row, side="right")) - 1
        return part, row - int(self.offsets[part])

    def __getitem__(self, key: Any) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, (int, np.integer)):
            part, local = self._locate(int(first))
            return np.asarray(self.parts[part][(local,) + tuple(rest)])
        if isinstance(first, slice):
            start, stop, step = first.indices(self.shape[0])
            if step != 1:
                raise IndexError("RowConcat supports row slices with step 1 only")
            pieces = []
            for i, p in enumerate(self.parts):
                a, b = max(start, int(self.offsets[i])), min(stop, int(self.offsets[i + 1]))
                if a < b:
                    lo = a - int(self.offsets[i])
                    pieces.append(np.asarray(p[(slice(lo, lo + b - a),) + tuple(rest)]))
            if not pieces:
                empty = np.zeros((0,) + self.shape[1:], dtype=self.dtype)
                return empty[(slice(None),) + tuple(rest)]
            return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=0)
        raise IndexError(f"RowConcat does not support index {key!r}")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.concatenate([np.asarray(p) for p in self.parts], axis=0)
        return out if dtype is None else out.astype(dtype, copy=False)


def take_rows(array: Any, rows: Sequence[int]) -> np.ndarray:
    """``array[rows]`` for an ndarray, a memmap or a RowConcat (rows in any order)."""
    rows = [int(r) for r in rows]
    if isinstance(array, np.ndarray):
        return np.asarray(array[np.asarray(rows, dtype=np.int64)])
    if not rows:
        return np.zeros((0,) + tuple(array.shape[1:]), dtype=array.dtype)
    return np.stack([np.asarray(array[r]) for r in rows])


def row_blocks(n: int, block_rows: int, boundaries: Sequence[int] = ()) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` blocks of at most ``block_rows`` rows covering ``0..n``;
    no block crosses one of ``boundaries`` (the shard offsets), so each block
    reads from one memory-mapped file."""
    block_rows = max(1, int(block_rows))
    cuts = sorted({0, n, *[int(b) for b in boundaries if 0 < int(b) < n]})
    for a, b in zip(cuts[:-1], cuts[1:]):
        for start in range(a, b, block_rows):
            yield start, min(b, start + block_rows)


def block_rows_for(budget: int, dim: int, langs: int, queries: int = 1) -> int:
    """Rows per block so that one block's working set stays within ``budget``:
    passage rows + one aggregate per language + the fused rows (float32, D each),
    plus the (queries x rows) score block."""
    per_row = 4 * (dim * (2 + max(0, langs)) + max(1, queries))
    return max(1, int(budget // max(1, per_row)))


class TopK:
    """Running top-k of a batch of queries over row blocks (best first; ties by row)."""

    def __init__(self, queries: int, k: int) -> None:
        self.k = int(k)
        self.scores = np.full((queries, 0), -np.inf, dtype=np.float32)
        self.rows = np.zeros((queries, 0), dtype=np.int64)

    def add(self, scores: np.ndarray, start: int) -> None:
        """Merge a (queries, block) score block whose first row is ``start``."""
        nq, width = scores.shape
        if width == 0:
            return
        keep = min(self.k, width)
        if keep < width:
            part = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        else:
            part = np.broadcast_to(np.arange(width), (nq, width))
        cand_s = np.concatenate([self.scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        cand_r = np.concatenate([self.rows, part.astype(np.int64) + start], axis=1)
        # Sort by score desc, then row asc: the same order as a one-shot ranking.
        order = np.lexsort((cand_r, -cand_s), axis=1)[:, : self.k]
        self.scores = np.take_along_axis(cand_s, order, axis=1)
        self.rows = np.take_along_axis(cand_r, order, axis=1)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of shape (queries, k), rows -1 (score -inf) past the rows seen."""
        nq, have = self.scores.shape
        if have >= self.k:
            return self.scores, self.rows
        pad_s = np.full((nq, self.k - have), -np.inf, dtype=np.float32)
        pad_r = np.full((nq, self.k - have), -1, dtype=np.int64)
        return np.concatenate([self.scores, pad_s], axis=1), np.concatenate([self.rows, pad_r], axis=1)


def block_search(
    Q: np.ndarray,
    k: int,
    n: int,
    fused_rows: Callable[[int, int], np.ndarray],
    block_rows: int,
    boundaries: Sequence[int] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k of ``Q`` (queries, D) over ``n`` rows, reading
    ``fused_rows(start, stop)`` (float32 (stop-start, D)) one block at a time."""
    Q = np.ascontiguousarray(np.atleast_2d(Q), dtype=np.float32)
    top = TopK(Q.shape[0], k)
    for start, stop in row_blocks(n, block_rows, boundaries):
        F = fused_rows(start, stop)
        top.add(Q @ np.ascontiguousarray(F, dtype=np.float32).T, start)
    return top.result()
