"""Synthetic indexes for the search, alpha-change and scaling measurements.

Vectors are unit-length float32, ``D`` = 384 (the offline encoder's size).
Two kinds of data:

* ``random_unit``: i.i.d. Gaussian directions (fine for exact search timing);
* ``clustered``: points around ``n_clusters`` random centres with cosine ~0.75 to
  their centre, like real embeddings (which are far from uniform). Approximate
  indexes (IVF) are only meaningful on data with structure, so their Recall@10 is
  measured on this kind; queries are perturbed copies of random data points.

Generated-query vectors (``N x NMAX x D`` per language) are written to ``.npy``
files and memory-mapped, exactly as :func:`xqg_tui.index.store.open_index` does,
so they do not have to fit in RAM twice.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from xqg_tui.index.store import Index
from xqg_tui.types import Passage

DIM = 384
LANGS = ("ar", "bn", "fi", "ja", "ko", "ru", "te")


def _normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=-1, keepdims=True).clip(min=1e-12)
    return x


def random_unit(n: int, d: int = DIM, seed: int = 0, block: int = 65536) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    for a in range(0, n, block):
        b = min(n, a + block)
        out[a:b] = _normalise(rng.standard_normal((b - a, d), dtype=np.float32))
    return out


def clustered(n: int, d: int = DIM, n_clusters: int = 1000, spread: float = 0.9, seed: int = 0,
              block: int = 65536, out: np.ndarray | None = None) -> np.ndarray:
    """``n`` unit vectors around ``n_clusters`` centres (noise norm ~``spread``)."""
    rng = np.random.default_rng(seed)
    centres = _normalise(rng.standard_normal((n_clusters, d), dtype=np.float32))
    if out is None:
        out = np.empty((n, d), dtype=np.float32)
    scale = np.float32(spread / np.sqrt(d))
    for a in range(0, n, block):
        b = min(n, a + block)
        z = rng.integers(0, n_clusters, size=b - a)
        x = centres[z] + scale * rng.standard_normal((b - a, d), dtype=np.float32)
        out[a:b] = _normalise(x)
    return out


def queries_near(data: np.ndarray, n: int, noise: float = 0.6, seed: int = 1) -> np.ndarray:
    """Queries = perturbed copies of random data rows (each has a true near neighbour)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, data.shape[0], size=n)
    d = data.shape[1]
    q = data[rows] + np.float32(noise / np.sqrt(d)) * rng.standard_normal((n, d), dtype=np.float32)
    return _normalise(q.astype(np.float32))


class LazyPassages(Sequence[Passage]):
    """``N`` placeholder passages made on demand (no 1M Python objects in RAM)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(i)
        return Passage(f"doc{i}", f"Title {i}", f"Synthetic passage number {i}.")

    def __iter__(self) -> Iterator[Passage]:
        for i in range(self.n):
            yield self[i]


class LazyGenerated(Sequence[dict]):
    def __init__(self, n: int, langs: Sequence[str], nmax: int) -> None:
        self.n, self.langs, self.nmax = n, list(langs), nmax

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):  # type: ignore[override]
        return {lang: [f"{lang} query {j} of doc{i}" for j in range(self.nmax)] for lang in self.langs}


def write_query_vectors(folder: Path, P: np.ndarray, langs: Sequence[str], nmax: int, dtype: str = "float16",
                        seed: int = 7, block: int = 8192) -> dict[str, np.ndarray]:
    """Per language an (N, nmax, D) ``.npy`` of queries near their passage; memory-mapped."""
    folder.mkdir(parents=True, exist_ok=True)
    n, d = P.shape
    out: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(seed)
    scale = np.float32(0.8 / np.sqrt(d))
    for lang in langs:
        path = folder / f"{lang}.npy"
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=(n, nmax, d))
        for a in range(0, n, block):
            b = min(n, a + block)
            x = P[a:b, None, :] + scale * rng.standard_normal((b - a, nmax, d), dtype=np.float32)
            arr[a:b] = _normalise(x)
        arr.flush()
        del arr
        out[lang] = np.load(path, mmap_mode="r", allow_pickle=False)
    return out


def make_index(P: np.ndarray, query_vectors: dict[str, np.ndarray] | None = None, nmax: int = 0,
               alpha: float = 0.2, fusion: str = "mean", root: Path | None = None) -> Index:
    """An :class:`Index` over given arrays, as ``open_index`` would return it."""
    n = P.shape[0]
    query_vectors = query_vectors or {}
    langs = list(query_vectors)
    counts = {lang: np.full(n, nmax, dtype=np.int64) for lang in langs}
    manifest = {
        "format": "xqg-index",
        "format_version": 1,
        "dtype": str(P.dtype),
        "encoder": {"model_id": "synthetic", "dim": int(P.shape[1]), "normalize": True},
        "generator": None,
        "generation": {"source": "synthetic", "langs": langs, "queries_per_lang": nmax, "equal_counts": True},
        "search_defaults": {"alpha": alpha, "fusion": fusion, "langs": langs},
        "counts": {"passages": n, "dim": int(P.shape[1])},
    }
    return Index(
        root=root or Path("<synthetic>"),
        manifest=manifest,
        passages=LazyPassages(n),  # type: ignore[arg-type]
        passage_vectors=P,
        query_vectors=query_vectors,
        query_counts=counts,
        _generated=LazyGenerated(n, langs, nmax),  # type: ignore[arg-type]
    )
