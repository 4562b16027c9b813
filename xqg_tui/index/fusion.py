"""Fusing generated-query vectors into passage vectors.

The paper (Zhuang et al., SIGIR 2023) uses ``(1 - alpha) * p + alpha * sum_i q_i``
over all generated queries. With unequal numbers of queries per passage that sum
gives passages with more queries a large common component, so ``mean`` fusion
(average each language's vectors, then sum over the chosen languages) is offered
too, and per-language weights.

Scores decompose linearly::

    s(q, d) = (1 - alpha) * <q, p_d> + alpha * sum_l w_l * <q, A_l[d]>

where ``A_l`` is the per-language aggregate (sum or mean of the first ``n``
vectors). The searcher keeps ``<q, p>`` and ``<q, A_l>`` per query, so a change
of alpha, weights or languages re-ranks without touching any model or matrix.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import XQGError
from .format import FUSIONS


@dataclass(frozen=True)
class FusionSpec:
    """How to build the augmented passage representation."""

    alpha: float = 0.01
    fusion: str = "sum"
    langs: tuple[str, ...] = ()
    n: int | None = None  # queries per language to use (None = all stored)
    weights: tuple[tuple[str, float], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise XQGError(f"fusion must be one of {', '.join(FUSIONS)}, not {self.fusion!r}")
        if not (0.0 <= float(self.alpha) <= 1.0) or self.alpha != self.alpha:
            raise XQGError(f"alpha must be between 0 and 1, not {self.alpha!r}")
        if self.n is not None and self.n < 0:
            raise XQGError(f"queries per language must be >= 0, not {self.n}")

    def weight(self, lang: str) -> float:
        return dict(self.weights).get(lang, 1.0)

    def coefficients(self) -> dict[str, float]:
        """Coefficient of each language aggregate in the fused vector."""
        return {lang: float(self.alpha) * self.weight(lang) for lang in self.langs}

    @property
    def is_plain(self) -> bool:
        return self.alpha == 0.0 or not self.langs or self.n == 0


def language_aggregate(
    vectors: np.ndarray, counts: np.ndarray, n: int | None, fusion: str
) -> np.ndarray:
    """Sum (or mean) of the first ``min(n, count)`` query vectors of each passage.

    vectors: (N, NMAX, D) (may be memory-mapped, float16 or float32); counts: (N,).
    Returns float32 (N, D). Rows with no queries are zero.
    """
    N, nmax, D = vectors.shape
    use = nmax if n is None else min(int(n), nmax)
    out = np.zeros((N, D), dtype=np.float32)
    if use == 0 or N == 0:
        return out
    counts = np.asarray(counts, dtype=np.int64)
    # Rows past a passage's count are stored as zeros, so a plain sum over the
    # first `use` slots is the sum over min(n, count) queries. Blocked to bound memory.
    block = max(1, (64 << 20) // max(1, use * D * 4))
    for start in range(0, N, block):
        stop = min(N, start + block)
        chunk = np.asarray(vectors[start:stop, :use, :], dtype=np.float32)
        out[start:stop] = chunk.sum(axis=1)
    if fusion == "mean":
        used = np.minimum(counts, use).astype(np.float32)
        nz = used > 0
        out[nz] /= used[nz, None]
    return out


def language_scores(
    vectors: np.ndarray, counts: np.ndarray, n: int | None, fusion: str, query: np.ndarray
) -> np.ndarray:
    """``language_aggregate(vectors, counts, n, fusion) @ query`` without building the
    aggregate: the stored query vectors' own scores, summed (or averaged) per passage.
    One pass over ``vectors`` (rows, NMAX, D); the aggregate route took three."""
    use = vectors.shape[1] if n is None else min(int(n), vectors.shape[1])
    if use == 0 or vectors.shape[0] == 0:
        return np.zeros(vectors.shape[0], dtype=np.float32)
    block = np.asarray(vectors[:, :use, :], dtype=np.float32)  # no copy for float32 memory maps
    scores = (block @ np.asarray(query, dtype=np.float32)).sum(axis=1)
    if fusion == "mean":
        used = np.minimum(np.asarray(counts, dtype=np.int64), use).astype(np.float32)
        scores = np.divide(scores, used, out=np.zeros_like(scores), where=used > 0)
    return scores


def augmented_matrix(
    passage_vectors: np.ndarray,
    aggregates: dict[str, np.ndarray],
    spec: FusionSpec,
) -> np.ndarray:
    """``(1 - alpha) * P + sum_l alpha * w_l * A_l`` as float32 (N, D)."""
    P = np.asarray(passage_vectors, dtype=np.float32)
    if spec.is_plain:
        return np.array(P, dtype=np.float32, copy=True)
    out = (1.0 - float(spec.alpha)) * P
    for lang, coef in spec.coefficients().items():
        if coef:
            out += np.float32(coef) * aggregates[lang]
    return out.astype(np.float32, copy=False)


def combine_scores(
    plain: np.ndarray, per_lang: dict[str, np.ndarray], spec: FusionSpec
) -> np.ndarray:
    """Augmented scores from the decomposed parts: no matrix is rebuilt."""
    if spec.is_plain:
        return plain.astype(np.float32, copy=True)
    out = (1.0 - float(spec.alpha)) * plain.astype(np.float32)
    for lang, coef in spec.coefficients().items():
        if coef:
            out += np.float32(coef) * per_lang[lang]
    return out


def unequal_counts(counts: np.ndarray) -> bool:
    """True when passages have different numbers of queries (where `sum` fusion misleads)."""
    c = np.asarray(counts)
    return c.size > 0 and int(c.min()) != int(c.max())
