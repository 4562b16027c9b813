"""Searching an index: plain vs augmented rankings, matched generated queries.

``Searcher`` is the one object the CLI, the app and notebooks use::

    s = Searcher.open("my-index")
    r = s.search("富士山の高さは？", k=5)
    r.plain, r.augmented            # lists of Hit
    r.augmented[0].matched          # generated queries of that passage, best first

Two paths share one scoring model (see ``index/fusion.py``):

* batches (``search_vectors``, ``retrieve``) use a FAISS exact inner-product
  index over the fused matrix, cached per fusion setting;
* interactive search keeps each query's score parts (``<q, p>`` and
  ``<q, A_lang>``) so changing alpha, fusion weights or languages re-ranks
  without any matrix rebuild or model call (``rerank``).

Scale-out (``index/blocks.py``, ``index/sharded.py``, ``index/ann.py``): when
the matrices would exceed the memory budget (``XQG_SEARCH_MEMORY`` or
``block_rows``), and always on an index of shards, exact search scores row
blocks of the memory-mapped vectors (fused per block) and merges per-block
top-k; ``ann=KIND`` searches a prebuilt faiss HNSW / IVF-PQ index instead.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from functools import cached_property
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import IndexError_, XQGError
from .index.blocks import block_rows_for, block_search, memory_budget, row_blocks, take_rows
from .index.fusion import FusionSpec, augmented_matrix, combine_scores, language_aggregate, language_scores, unequal_counts
from .index.sharded import AnyIndex, ShardedIndex, open_any
from .index.store import sums_aggregate
from .languages import detect_language, normalize_code
from .types import Hit, MatchedQuery, Query, Run

MAX_QUERY_CHARS = 20_000


@dataclass
class QueryState:
    """Everything computed for one typed query; re-ranking reuses it."""

    text: str
    lang: str
    detected: bool
    vector: np.ndarray  # (D,)
    plain_scores: np.ndarray  # (N,)
    lang_scores: dict[tuple[str, int | None, str], np.ndarray] = field(default_factory=dict)


@dataclass
class SearchResponse:
    query: str
    lang: str
    detected: bool
    spec: FusionSpec
    augment: bool
    plain: list[Hit]
    augmented: list[Hit]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def hits(self) -> list[Hit]:
        """The ranking the user asked for (augmented unless --no-augment)."""
        return self.augmented if self.augment else self.plain

    def to_dict(self) -> dict[str, Any]:
        def hit(h: Hit) -> dict[str, Any]:
            return {
                "docid": h.docid,
                "rank": h.rank,
                "score": round(float(h.score), 6),
                "title": h.title,
                "text": h.text,
                "rank_change": h.rank_change,
                "other_rank": h.other_rank,
                "matched_queries": [
                    {"lang": m.lang, "number": m.number, "text": m.text, "score": round(float(m.score), 6)} for m in h.matched
                ],
                "lang_contributions": {k: round(float(v), 6) for k, v in h.lang_contributions.items()},
            }

        return {
            "query": self.query,
            "lang": self.lang,
            "lang_detected": self.detected,
            "augment": self.augment,
            "alpha": self.spec.alpha,
            "fusion": self.spec.fusion,
            "langs": list(self.spec.langs),
            "queries_per_lang": self.spec.n,
            "hits": [hit(h) for h in self.hits],
            "plain": [hit(h) for h in self.plain],
            "augmented": [hit(h) for h in self.augmented],
            "warnings": self.warnings,
        }


def _describe(key: str, value: Any) -> str:
    """One fingerprint field in words: ``dim 384``, ``weights sha256 3f2a9c1b…``, ``pooling 'cls'``."""
    if key == "weights_sha256":
        return f"weights sha256 {str(value)[:12]}…"
    return f"{key.replace('_', ' ')} {value!r}" if isinstance(value, str) else f"{key.replace('_', ' ')} {value}"


def check_k(k: int) -> int:
    """The number of hits asked for: a whole number of 1 or more (0 or less is a mistake, not 1)."""
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise XQGError(f"k must be a whole number of 1 or more, not {k!r}")
    return int(k)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best scores, best first; ties broken by index for stable output."""
    k = min(k, scores.shape[0])
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < scores.shape[0]:
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(scores.shape[0])
    order = np.lexsort((part, -scores[part]))
    return part[order]


def _ranks_of(scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """1-based rank of each row in the full ranking by ``scores`` (ties: lower index first)."""
    out = np.empty(len(rows), dtype=np.int64)
    for i, r in enumerate(rows):
        s = scores[r]
        out[i] = 1 + int(np.count_nonzero(scores > s)) + int(np.count_nonzero(scores[:r] == s))
    return out


class Searcher:
    """Search one index with its own encoder."""

    def __init__(self, index: AnyIndex, encoder: Any = None, block_rows: int | None = None, memory: int | None = None) -> None:
        """``block_rows`` forces row-block scoring with that many rows per block;
        ``memory`` (bytes, default ``XQG_SEARCH_MEMORY`` / ``memory_budget()``)
        bounds the dense matrices kept in memory: beyond it search goes block-wise."""
        self.index = index
        self._encoder = encoder
        self._lock = threading.RLock()
        self._P: np.ndarray | None = None
        self._aggregates: dict[tuple[str, int | None, str], np.ndarray] = {}
        self._faiss: "OrderedDict[Any, Any]" = OrderedDict()
        self._fused: "OrderedDict[Any, np.ndarray]" = OrderedDict()
        self._ann: dict[str, Any] = {}
        self._states: "OrderedDict[tuple[str, str], QueryState]" = OrderedDict()
        if block_rows is not None and int(block_rows) < 1:
            raise XQGError(f"block rows must be >= 1, not {block_rows}")
        self.block_rows = int(block_rows) if block_rows is not None else None
        self.memory = int(memory) if memory is not None else memory_budget()
        if encoder is not None:
            self._check_encoder(encoder)

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str | Path, encoder: Any = None, verify: bool | None = None, block_rows: int | None = None, memory: int | None = None
    ) -> "Searcher":
        """Open an ordinary index or an index of shards (``xqg merge``)."""
        return cls(open_any(path, verify=verify), encoder, block_rows=block_rows, memory=memory)

    @property
    def sharded(self) -> bool:
        return isinstance(self.index, ShardedIndex)

    @property
    def encoder_loaded(self) -> bool:
        return self._encoder is not None

    def load_encoder(self, device: str = "auto") -> Any:
        """Load the index's own encoder (once). Raises ModelError when it cannot be loaded."""
        with self._lock:
            if self._encoder is None:
                from .models.encoder import Encoder

                fp = self.index.manifest["encoder"]
                enc = Encoder.load(
                    str(fp.get("model_id")),
                    device=device,
                    max_query_length=int(fp.get("max_query_length", 32)),
                    max_passage_length=int(fp.get("max_passage_length", 128)),
                )
                self._check_encoder(enc)
                self._encoder = enc
            return self._encoder

    def _check_encoder(self, enc: Any) -> None:
        stored = self.index.manifest["encoder"]
        if not hasattr(enc, "fingerprint"):
            return
        fp = enc.fingerprint()
        # "dim" first: a dimension mismatch is the one a user recognises at once.
        for key in ("dim", "weights_sha256", "pooling", "normalize", "query_prefix"):
            if key in stored and key in fp and stored[key] != fp[key]:
                raise IndexError_(
                    f"{self.index.root}: encoder mismatch: the index was built with encoder {stored.get('model_id')!r} "
                    f"({_describe(key, stored[key])}), the loaded encoder {fp.get('model_id')!r} has {_describe(key, fp[key])}",
                    "search with the encoder the index was built with, or rebuild the index",
                )
        if int(getattr(enc, "dim", self.index.dim)) != self.index.dim:
            raise IndexError_(f"{self.index.root}: encoder mismatch: the loaded encoder has dim {enc.dim}, "
                              f"the index vectors have dim {self.index.dim}", "rebuild the index with this encoder")

    # ---- fusion settings --------------------------------------------------------------
    def spec(
        self,
        alpha: float | None = None,
        fusion: str | None = None,
        langs: Iterable[str] | None = None,
        n: int | None = None,
        weights: dict[str, float] | None = None,
    ) -> FusionSpec:
        d = self.index.search_defaults
        chosen = list(d.get("langs", self.index.langs)) if langs is None else [normalize_code(l) for l in langs]
        unknown = [l for l in chosen if l not in self.index.langs]
        if unknown:
            have = ", ".join(self.index.langs) or "none"
            raise XQGError(f"the index has no generated queries in {', '.join(unknown)} (it has: {have})")
        return FusionSpec(
            alpha=float(d["alpha"] if alpha is None else alpha),
            fusion=str(d["fusion"] if fusion is None else fusion),
            langs=tuple(chosen),
            n=n,
            weights=tuple(sorted((weights or {}).items())),
        )

    def warnings_for(self, spec: FusionSpec) -> list[str]:
        if spec.fusion == "sum" and not spec.is_plain and not self.index.manifest["generation"].get("equal_counts", True):
            return ["passages have different numbers of generated queries: `sum` fusion favours passages with more queries (try --fusion mean)"]
        return []

    # ---- matrices ---------------------------------------------------------------------
    @property
    def passage_matrix(self) -> np.ndarray:
        with self._lock:
            if self._P is None:
                self._P = np.ascontiguousarray(self.index.passage_vectors, dtype=np.float32)
            return self._P

    def aggregate(self, lang: str, n: int | None, fusion: str) -> np.ndarray:
        key = (lang, n, fusion)
        with self._lock:
            if key not in self._aggregates:
                if self.index.store == "sums":
                    # Only per-language sums are stored: mean/sum of all queries, no n sweep.
                    self._aggregates[key] = self.index.sums_aggregate(lang, n, fusion)
                else:
                    self._aggregates[key] = language_aggregate(
                        self.index.query_vectors[lang], self.index.query_counts[lang], n, fusion
                    )
            return self._aggregates[key]

    def fused_matrix(self, spec: FusionSpec) -> np.ndarray:
        aggs = {l: self.aggregate(l, spec.n, spec.fusion) for l in spec.langs} if not spec.is_plain else {}
        return augmented_matrix(self.passage_matrix, aggs, spec)

    # ---- memory budget and row blocks ---------------------------------------------------
    def _matrix_bytes(self, matrices: int) -> int:
        return int(matrices) * self.index.size * self.index.dim * 4

    def blockwise(self, spec: FusionSpec | None = None) -> bool:
        """Whether exact batch search for ``spec`` scores row blocks (forced, or the
        in-memory path's P + aggregates + fused + faiss copy exceed the budget)."""
        if self.block_rows is not None:
            return True
        langs = 0 if spec is None or spec.is_plain else len(spec.langs)
        return self._matrix_bytes(3 + langs) > self.memory

    def _rows_per_block(self, spec: FusionSpec | None, queries: int = 1) -> int:
        if self.block_rows is not None:
            return self.block_rows
        langs = 0 if spec is None or spec.is_plain else len(spec.langs)
        return block_rows_for(self.memory, self.index.dim, langs, queries)

    def _boundaries(self) -> list[int]:
        return list(self.index.offsets) if isinstance(self.index, ShardedIndex) else []

    def _aggregate_block(self, lang: str, n: int | None, fusion: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of ``aggregate(lang, n, fusion)`` without building it all."""
        with self._lock:
            cached = self._aggregates.get((lang, n, fusion))
        if cached is not None:
            return cached[start:stop]
        counts = self.index.query_counts[lang][start:stop]
        if self.index.store == "sums":
            return self._sums_rows(lang, n, fusion, self.index.query_sums[lang][start:stop], counts)
        return language_aggregate(self.index.query_vectors[lang][start:stop], counts, n, fusion)

    def _sums_rows(self, lang: str, n: int | None, fusion: str, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Aggregate rows of a ``--store sums`` index (same rules as ``Index.sums_aggregate``)."""
        if n == 0:
            return np.zeros((len(counts), self.index.dim), dtype=np.float32)
        top = self.index.query_counts[lang]
        if n is not None and top.size and n < int(top.max()):
            return self.index.sums_aggregate(lang, n, fusion)  # raises its one-line error before any work
        return sums_aggregate(np.asarray(sums), counts, fusion)

    def fused_rows(self, spec: FusionSpec | None, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of the fused matrix for ``spec`` (float32), computed from
        those rows only unless the whole matrix is cached."""
        key = None if spec is None or spec.is_plain else spec
        with self._lock:
            full = self._fused.get(key)
        if full is not None:
            return full[start:stop]
        if key is not None and spec == self._stored_fused_spec:
            return np.asarray(self.index.stored_fused[start:stop], dtype=np.float32)
        P = np.asarray(self.index.passage_vectors[start:stop], dtype=np.float32)
        if key is None:
            return P
        aggs = {l: self._aggregate_block(l, spec.n, spec.fusion, start, stop) for l in spec.langs if spec.coefficients().get(l)}
        return augmented_matrix(P, aggs, spec)

    @cached_property
    def _stored_fused_spec(self) -> FusionSpec | None:
        """The setting the build's stored fused matrix holds (the index defaults), or
        None when there is none or it is not float32 (a float16 file is rounded after
        fusing, so it would not match what is computed from the parts)."""
        if self.index.manifest.get("dtype") != "float32" or self.index.stored_fused is None:
            return None
        return self.spec()

    def _cached_fused(self, spec: FusionSpec | None) -> None:
        """Keep the whole fused matrix for ``spec`` when it fits the budget (a sharded
        index reuses it across batches; blocks are then slices of it)."""
        key = None if spec is None or spec.is_plain else spec
        with self._lock:
            if key in self._fused:
                self._fused.move_to_end(key)
                return
        if self.blockwise(spec):
            return
        M = np.ascontiguousarray(self.fused_rows(spec, 0, self.index.size), dtype=np.float32)
        with self._lock:
            self._fused[key] = M
            while len(self._fused) > 1 and sum(m.nbytes for m in self._fused.values()) > self.memory // 2:
                self._fused.popitem(last=False)

    def _block_search(self, Q: np.ndarray, k: int, spec: FusionSpec | None) -> tuple[np.ndarray, np.ndarray]:
        self._cached_fused(spec)
        rows = self._rows_per_block(spec, queries=Q.shape[0])
        return block_search(Q, k, self.index.size, lambda a, b: self.fused_rows(spec, a, b), rows, self._boundaries())

    def exact_row_scores(self, qvec: np.ndarray, rows: Sequence[int], spec: FusionSpec | None) -> np.ndarray:
        """Exact fused scores of ``qvec`` against a few ``rows`` (re-scoring ANN candidates)."""
        rows = [int(r) for r in rows]
        P = take_rows(self.index.passage_vectors, rows).astype(np.float32)
        if spec is None or spec.is_plain or not rows:
            return P @ qvec
        aggs = {}
        for lang in spec.langs:
            counts = self.index.query_counts[lang][np.asarray(rows, dtype=np.int64)]
            if self.index.store == "sums":
                aggs[lang] = self._sums_rows(lang, spec.n, spec.fusion, take_rows(self.index.query_sums[lang], rows), counts)
            else:
                aggs[lang] = language_aggregate(take_rows(self.index.query_vectors[lang], rows), counts, spec.n, spec.fusion)
        return augmented_matrix(P, aggs, spec) @ qvec

    def _faiss_index(self, spec: FusionSpec | None):
        import faiss

        key = None if spec is None or spec.is_plain else spec
        with self._lock:
            if key in self._faiss:
                self._faiss.move_to_end(key)
                return self._faiss[key]
            M = self.passage_matrix if key is None else self.fused_matrix(spec)
            idx = faiss.IndexFlatIP(M.shape[1])
            idx.add(np.ascontiguousarray(M, dtype=np.float32))
            self._faiss[key] = idx
            # Bound memory: at most 4 fusion settings, and within the budget.
            while len(self._faiss) > 4 or (len(self._faiss) > 1 and self._matrix_bytes(len(self._faiss)) > self.memory // 2):
                self._faiss.popitem(last=False)
            return idx

    # ---- batch search -----------------------------------------------------------------
    def search_vectors(
        self, Q: np.ndarray, k: int = 10, spec: FusionSpec | None = None, ann: str | None = None, **ann_params: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product top-k for a batch of query vectors: (scores, rows), rows -1 past N.

        Exact unless ``ann`` names a built ANN index (``hnsw`` / ``ivfpq``; its
        candidates are re-scored exactly). Exact search is one faiss flat index in
        memory, or row blocks over the memory-mapped vectors (sharded index, over
        the memory budget, or ``block_rows`` set): the same top-k either way."""
        Q = np.ascontiguousarray(np.atleast_2d(Q), dtype=np.float32)
        k = min(check_k(k), self.index.size)
        if ann:
            return self.ann_index(ann, spec).search(self, Q, k, **ann_params)
        if self.sharded or self.blockwise(spec):
            return self._block_search(Q, k, spec)
        return self._faiss_index(spec).search(Q, k)

    def ann_index(self, kind: str, spec: FusionSpec | None) -> Any:
        """The ANN index of ``kind`` under INDEX/ann/, checked against ``spec`` and the
        index's vectors (IndexError_ when absent or stale)."""
        from .index.ann import load_ann

        spec = spec if spec is not None else self.spec(alpha=0.0)
        with self._lock:
            cached = self._ann.get(kind)
        if cached is None:
            cached = load_ann(self.index, kind)
            with self._lock:
                self._ann[kind] = cached
        cached.check(self.index, spec)
        return cached

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.load_encoder().encode_queries(list(texts)), dtype=np.float32)

    def retrieve(
        self,
        queries: Sequence[Query],
        k: int = 100,
        spec: FusionSpec | None = None,
        batch_size: int = 256,
        progress: Any = None,
        ann: str | None = None,
    ) -> Run:
        """Top-k for every query (a TREC-style run)."""
        check_k(k)
        run: Run = {}
        docids = self.index.docids
        if not ann and (self.sharded or self.blockwise(spec)):
            # One pass over the (memory-mapped) rows serves many queries.
            batch_size = max(batch_size, 4096)
        for start in range(0, len(queries), batch_size):
            batch = queries[start : start + batch_size]
            Q = self.encode_queries([q.text for q in batch])
            scores, rows = self.search_vectors(Q, k, spec, ann=ann)
            for q, srow, irow in zip(batch, scores, rows):
                run[q.qid] = [(docids[int(i)], float(s)) for s, i in zip(srow, irow) if i >= 0]
            if progress is not None:
                progress(min(len(queries), start + batch_size), len(queries))
        return run

    # ---- interactive search -----------------------------------------------------------
    def query_state(self, text: str, lang: str | None = None) -> QueryState:
        text = self._check_text(text)
        key = (text, lang or "")
        with self._lock:
            if key in self._states:
                self._states.move_to_end(key)
                return self._states[key]
        if lang:
            code, detected = normalize_code(lang), False
        else:
            code, detected = detect_language(text, self.index.langs or None).code, True
        vec = self.encode_queries([text])[0]
        state = QueryState(text, code, detected, vec, self._plain_scores(vec))
        with self._lock:
            self._states[key] = state
            while len(self._states) > 32:
                self._states.popitem(last=False)
        return state

    def _plain_scores(self, vec: np.ndarray) -> np.ndarray:
        """``<q, p>`` for every passage; by row blocks of the memory-mapped vectors
        when P does not fit the budget (or on a sharded index)."""
        if not (self.sharded or self.block_rows is not None or self._matrix_bytes(1) > self.memory):
            return self.passage_matrix @ vec
        rows = self._rows_per_block(None)
        out = np.empty(self.index.size, dtype=np.float32)
        for a, b in row_blocks(self.index.size, rows, self._boundaries()):
            out[a:b] = np.asarray(self.index.passage_vectors[a:b], dtype=np.float32) @ vec
        return out

    def _lang_scores(self, state: QueryState, spec: FusionSpec) -> dict[str, np.ndarray]:
        out = {}
        # Cached N x D aggregates when P + all of them fit the budget, else row blocks.
        in_memory = self.block_rows is None and self._matrix_bytes(1 + len(spec.langs)) <= self.memory
        for lang in spec.langs:
            key = (lang, spec.n, spec.fusion)
            if key not in state.lang_scores:
                if in_memory:
                    state.lang_scores[key] = self.aggregate(lang, spec.n, spec.fusion) @ state.vector
                else:
                    state.lang_scores[key] = self._blockwise_lang_scores(lang, spec.n, spec.fusion, state.vector)
            out[lang] = state.lang_scores[key]
        return out

    def _blockwise_lang_scores(self, lang: str, n: int | None, fusion: str, vec: np.ndarray) -> np.ndarray:
        out = np.empty(self.index.size, dtype=np.float32)
        rows = self._rows_per_block(FusionSpec(alpha=1.0, fusion=fusion, langs=(lang,)))
        with self._lock:
            cached = (lang, n, fusion) in self._aggregates
        # Full store, nothing cached: score the query vectors directly (one pass).
        direct = self.index.store != "sums" and not cached
        for a, b in row_blocks(self.index.size, rows, self._boundaries()):
            if direct:
                V, counts = self.index.query_vectors[lang][a:b], self.index.query_counts[lang][a:b]
                out[a:b] = language_scores(V, counts, n, fusion, vec)
            else:
                out[a:b] = self._aggregate_block(lang, n, fusion, a, b) @ vec
        return out

    @staticmethod
    def _check_text(text: str) -> str:
        if not isinstance(text, str):
            raise XQGError("the query must be text")
        cleaned = text.replace("\x00", " ").strip()
        if not cleaned.isascii():
            try:
                cleaned.encode("utf-8")
            except UnicodeEncodeError:
                # Lone surrogates: invalid UTF-8 bytes on the command line arrive this
                # way, and the tokenizer cannot take them. Keep the rest of the query.
                cleaned = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in cleaned).strip()
        if not cleaned:
            raise XQGError("the query is empty: type a question first")
        if len(cleaned) > MAX_QUERY_CHARS:
            # The encoder truncates at its max length anyway; cap the work here.
            cleaned = cleaned[:MAX_QUERY_CHARS]
        return cleaned

    def search(
        self,
        text: str,
        lang: str | None = None,
        k: int = 10,
        alpha: float | None = None,
        fusion: str | None = None,
        langs: Iterable[str] | None = None,
        n: int | None = None,
        augment: bool = True,
        weights: dict[str, float] | None = None,
        ann: str | None = None,
        **ann_params: Any,
    ) -> SearchResponse:
        """Encode ``text`` (once; cached) and rank passages plain and augmented.

        With ``ann`` (``hnsw`` / ``ivfpq``) only the requested ranking is computed,
        from the ANN index (``ann_params``: ``ef``, ``nprobe``); the other list is empty."""
        t0 = time.perf_counter()
        spec = self.spec(alpha, fusion, langs, n, weights)
        if ann:
            resp = self._ann_search(text, lang, k, spec if augment else self.spec(alpha=0.0, langs=spec.langs, n=n), augment, ann, ann_params)
        else:
            state = self.query_state(text, lang)
            resp = self.rerank(state, k, spec, augment)
        resp.seconds = time.perf_counter() - t0
        return resp

    def _ann_search(self, text, lang, k, spec: FusionSpec, augment: bool, kind: str, params: dict[str, Any]) -> SearchResponse:
        ann = self.ann_index(kind, spec)  # stale/absent: fail before encoding
        text = self._check_text(text)
        if lang:
            code, detected = normalize_code(lang), False
        else:
            code, detected = detect_language(text, self.index.langs or None).code, True
        vec = self.encode_queries([text])[0]
        scores, rows = ann.search(self, vec[None, :], min(check_k(k), self.index.size), **params)
        coefs = spec.coefficients() if not spec.is_plain else {}
        hits = []
        for rank, (row, score) in enumerate(((int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0), 1):
            p = self.index.passages[row]
            contrib = {}
            for l in spec.langs if coefs else ():
                agg = self._aggregate_block(l, spec.n, spec.fusion, row, row + 1)[0]
                contrib[l] = float(coefs.get(l, 0.0) * float(agg @ vec))
            matched = self.matched_queries(row, vec, spec.langs or tuple(self.index.langs), spec.n)
            hits.append(Hit(docid=p.docid, rank=rank, score=score, title=p.title, text=p.text, matched=matched, lang_contributions=contrib))
        warnings = self.warnings_for(spec) + [f"approximate search ({kind}): the ranking may miss passages exact search finds"]
        return SearchResponse(text, code, detected, spec, augment, [] if augment else hits, hits if augment else [], warnings)

    def rerank(self, state: QueryState, k: int, spec: FusionSpec, augment: bool = True) -> SearchResponse:
        """Rank again with other fusion settings: no model call, no matrix rebuild."""
        k = check_k(k)
        plain = state.plain_scores
        per_lang = self._lang_scores(state, spec)
        aug = combine_scores(plain, per_lang, spec) if augment else plain
        plain_rows = _top_k(plain, k)
        aug_rows = _top_k(aug, k)
        plain_hits = self._hits(plain_rows, plain, aug, state, spec, per_lang)
        aug_hits = self._hits(aug_rows, aug, plain, state, spec, per_lang)
        return SearchResponse(state.text, state.lang, state.detected, spec, augment, plain_hits, aug_hits, self.warnings_for(spec))

    def _hits(self, rows, scores, other_scores, state, spec, per_lang) -> list[Hit]:
        other = _ranks_of(other_scores, rows)
        coefs = spec.coefficients() if not spec.is_plain else {}
        hits = []
        for rank, (row, orank) in enumerate(zip(rows, other), 1):
            p = self.index.passages[int(row)]
            hits.append(
                Hit(
                    docid=p.docid,
                    rank=rank,
                    score=float(scores[row]),
                    title=p.title,
                    text=p.text,
                    matched=self.matched_queries(int(row), state.vector, spec.langs or tuple(self.index.langs), spec.n),
                    other_rank=int(orank),
                    lang_contributions={l: float(coefs.get(l, 0.0) * per_lang[l][row]) for l in spec.langs},
                )
            )
        return hits

    def matched_queries(self, row: int, qvec: np.ndarray, langs: Sequence[str], n: int | None = None) -> list[MatchedQuery]:
        """The passage's generated queries in ``langs``, scored against ``qvec``, best first."""
        out: list[MatchedQuery] = []
        if self.index.store == "sums":
            return out  # no per-query vectors to score (--store sums)
        texts = self.index.generated(row)
        for lang in langs:
            if lang not in self.index.query_vectors:
                continue
            c = int(self.index.query_counts[lang][row])
            if n is not None:
                c = min(c, n)
            if c == 0:
                continue
            V = np.asarray(self.index.query_vectors[lang][row, :c], dtype=np.float32)
            s = V @ qvec
            for j in range(c):
                out.append(MatchedQuery(lang, j, texts.get(lang, [""] * c)[j], float(s[j])))
        out.sort(key=lambda m: -m.score)
        return out
