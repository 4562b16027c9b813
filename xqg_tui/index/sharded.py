"""An index of shards: one folder whose manifest lists complete shard indexes.

Layout (written by ``xqg merge``, see ``merge.py``)::

    DIR/manifest.json     {"format": "xqg-index", "kind": "sharded", "shards": [{"path": "shard-00000", ...}], ...}
    DIR/shard-00000/      a complete ordinary index (its own manifest, checksums)
    ...

``ShardedIndex`` looks like ``store.Index`` to the searcher: rows are the
shards' rows one after the other, the vector arrays are ``RowConcat`` views of
the shards' memory-mapped arrays (nothing is copied), and the manifest is the
shared one with summed counts. ``open_any`` opens either kind.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..errors import IndexError_, XQGError
from ..types import Passage
from . import format as fmt
from .blocks import RowConcat
from .lines import ConcatRows
from .store import SUMS_HINT, Index, SumsOnly, _load_json, open_index, read_manifest, sums_aggregate

KIND_SHARDED = "sharded"


def manifest_kind(root: str | Path) -> str:
    """``"sharded"`` or ``"single"`` (an ordinary index), without validating the rest."""
    path = Path(root) / fmt.MANIFEST
    if not path.is_file():
        return "single"  # let read_manifest explain what is missing
    m = _load_json(path)
    return KIND_SHARDED if isinstance(m, dict) and m.get("kind") == KIND_SHARDED else "single"


@dataclass
class ShardedIndex:
    """Several complete shard indexes searched as one (row order: shard 0, shard 1, ...)."""

    root: Path
    manifest: dict[str, Any]
    shards: list[Index]
    passages: Any = field(repr=False, default_factory=list)  # ConcatRows of the shards' lazy rows
    passage_vectors: Any = None  # RowConcat (N, D)
    query_vectors: dict[str, Any] = field(repr=False, default_factory=dict)  # lang -> RowConcat (N, NMAX, D)
    query_counts: dict[str, np.ndarray] = field(repr=False, default_factory=dict)  # lang -> (N,)
    query_sums: dict[str, Any] = field(repr=False, default_factory=dict)  # lang -> RowConcat (N, D), store "sums" only

    @property
    def store(self) -> str:
        return str(self.manifest.get("store", "full"))

    def sums_aggregate(self, lang: str, n: int | None, fusion: str) -> np.ndarray:
        """As ``Index.sums_aggregate`` over all shards (materialises N x D)."""
        counts = self.query_counts[lang]
        if n == 0:
            return np.zeros((self.size, self.dim), dtype=np.float32)
        if n is not None and counts.size and n < int(counts.max()):
            raise XQGError(f"{self.root}: cannot use {n} queries per language: this index keeps only the sums of all "
                           f"{int(counts.max())} (--store sums)", SUMS_HINT)
        return sums_aggregate(np.asarray(self.query_sums[lang]), counts, fusion)

    @property
    def offsets(self) -> list[int]:
        """First global row of each shard (and the total at the end)."""
        out = [0]
        for s in self.shards:
            out.append(out[-1] + s.size)
        return out

    @property
    def langs(self) -> list[str]:
        return list(self.manifest["generation"]["langs"])

    @property
    def dim(self) -> int:
        return int(self.passage_vectors.shape[1])

    @property
    def size(self) -> int:
        return len(self.passages)

    @property
    def encoder_spec(self) -> str:
        return str(self.manifest["encoder"].get("model_id") or self.manifest["encoder"].get("source"))

    @cached_property
    def docids(self) -> list[str]:
        docids = [d for s in self.shards for d in s.docids]
        # Checked when docids are first needed, not at open (which would parse every
        # passage); merge refuses such shards, a hand-edited manifest may not.
        if len(set(docids)) != len(docids):
            raise IndexError_(f"{self.root}: the same docid appears in more than one shard",
                              "merge the shards again (merge refuses duplicates)")
        return docids

    @cached_property
    def docid_index(self) -> dict[str, int]:
        return {d: i for i, d in enumerate(self.docids)}

    @cached_property
    def stored_fused(self) -> Any:
        """The shards' stored fused matrices as one (``RowConcat``), or None if one lacks it."""
        parts = [s.stored_fused for s in self.shards]
        return None if any(p is None for p in parts) else RowConcat(parts)

    def locate(self, row: int) -> tuple[int, int]:
        """(shard number, row inside that shard) of a global row."""
        offs = self.offsets
        part = int(np.searchsorted(offs, row, side="right")) - 1
        return part, row - offs[part]

    def generated(self, row: int) -> dict[str, list[str]]:
        part, local = self.locate(row)
        return self.shards[part].generated(local)

    def generated_for(self, docid: str) -> dict[str, list[str]]:
        return self.generated(self.docid_index[docid])

    @property
    def search_defaults(self) -> dict[str, Any]:
        return dict(self.manifest["search_defaults"])


AnyIndex = Union[Index, ShardedIndex]


def read_sharded_manifest(root: Path) -> dict[str, Any]:
    where = root / fmt.MANIFEST
    m = _load_json(where)
    if not isinstance(m, dict) or m.get("format") != fmt.FORMAT_NAME or m.get("kind") != KIND_SHARDED:
        raise IndexError_(f"{where}: not an index of shards", "make one with `xqg merge --out DIR SHARD...`")
    if m.get("format_version") != fmt.FORMAT_VERSION:
        raise IndexError_(f"{where}: index format version {m.get('format_version')!r}, this xqg reads version {fmt.FORMAT_VERSION}", "merge the shards again with this xqg")
    shards = m.get("shards")
    if not isinstance(shards, list) or not shards:
        raise IndexError_(f"{where}: field 'shards' missing or empty", "merge the shards again")
    for key in ("encoder", "generation", "search_defaults", "counts", "dtype"):
        if key not in m:
            raise IndexError_(f"{where}: field '{key}' missing", "merge the shards again")
    for s in shards:
        if not isinstance(s, dict):
            raise IndexError_(f"{where}: damaged shard entry {s!r}", "merge the shards again")
        fmt.safe_join(root, s.get("path"))
    return m


def open_sharded(root: str | Path, verify: bool | None = None, mmap: bool = True) -> ShardedIndex:
    """Open an index of shards: every shard is opened (and checked) as an ordinary index."""
    root = Path(root)
    m = read_sharded_manifest(root)
    shards = [open_index(fmt.safe_join(root, s["path"]), verify=verify, mmap=mmap) for s in m["shards"]]
    for entry, shard in zip(m["shards"], shards):
        if "passages" in entry and int(entry["passages"]) != shard.size:
            raise IndexError_(f"{shard.root}: {shard.size} passages, the index of shards says {entry['passages']}", "merge the shards again")
        if shard.langs != list(m["generation"]["langs"]) or shard.dim != int(m["counts"]["dim"]):
            raise IndexError_(f"{shard.root}: languages or dimension differ from the other shards", "merge the shards again")
        if shard.store != m.get("store", "full"):
            raise IndexError_(f"{shard.root}: store {shard.store!r} differs from the index of shards", "merge the shards again")
    passages = ConcatRows([s.passages for s in shards])
    langs = list(m["generation"]["langs"])
    sums = m.get("store", "full") == "sums"
    idx = ShardedIndex(
        root=root,
        manifest=m,
        shards=shards,
        passages=passages,
        passage_vectors=RowConcat([s.passage_vectors for s in shards]),
        query_vectors=SumsOnly(root) if sums else {l: _concat_padded([s.query_vectors[l] for s in shards]) for l in langs},
        query_counts={l: np.concatenate([s.query_counts[l] for s in shards]) for l in langs},
        query_sums={l: RowConcat([s.query_sums[l] for s in shards]) for l in langs} if sums else {},
    )
    # Shards sharing docids are caught when docids are first mapped (docid_index);
    # a shard listed twice is caught now, cheaply.
    if len({s.root.resolve() for s in shards}) != len(shards):
        raise IndexError_(f"{root}: the same shard is listed more than once", "merge the shards again (merge refuses duplicates)")
    return idx


def _concat_padded(parts: list[Any]) -> RowConcat:
    """Shards store (N_i, NMAX_i, D) with their own NMAX: pad the narrower ones
    (zero rows, as past a passage's count) only when they differ."""
    width = max(int(p.shape[1]) for p in parts)
    return RowConcat([p if int(p.shape[1]) == width else _Padded(p, width) for p in parts])


class _Padded:
    """(N, n, D) array seen as (N, width, D) with zero rows past ``n`` (read lazily)."""

    def __init__(self, inner: Any, width: int) -> None:
        self.inner = inner
        self.shape = (int(inner.shape[0]), int(width), int(inner.shape[2]))
        self.dtype = inner.dtype
        self.ndim = 3

    def __getitem__(self, key: Any) -> np.ndarray:
        full = np.zeros((1,) + self.shape[1:], dtype=self.dtype)
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, slice):
            rows = np.asarray(self.inner[first])
            full = np.zeros((rows.shape[0],) + self.shape[1:], dtype=self.dtype)
            full[:, : self.inner.shape[1]] = rows
            return full[(slice(None),) + tuple(rest)]
        full[0, : self.inner.shape[1]] = np.asarray(self.inner[int(first)])
        return full[(0,) + tuple(rest)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self[0 : self.shape[0]] if dtype is None else self[0 : self.shape[0]].astype(dtype)


def open_any(root: str | Path, verify: bool | None = None, mmap: bool = True) -> AnyIndex:
    """Open an ordinary index or an index of shards (``Searcher.open`` uses this)."""
    if manifest_kind(root) == KIND_SHARDED:
        return open_sharded(root, verify=verify, mmap=mmap)
    return open_index(root, verify=verify, mmap=mmap)


def describe(index: AnyIndex) -> str:
    """One line for `xqg index info`-style output."""
    if isinstance(index, ShardedIndex):
        return f"{index.root}: {index.size} passages in {len(index.shards)} shards"
    return f"{index.root}: {index.size} passages"


__all__ = ["ShardedIndex", "AnyIndex", "open_any", "open_sharded", "manifest_kind", "read_manifest", "KIND_SHARDED"]
