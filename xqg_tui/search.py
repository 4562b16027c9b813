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
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import IndexError_, XQGError
from .index.fusion import FusionSpec, augmented_matrix, combine_scores, language_aggregate, unequal_counts
from .index.store import Index, open_index
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

    def __init__(self, index: Index, encoder: Any = None) -> None:
        self.index = index
        self._encoder = encoder
        self._lock = threading.RLock()
        self._P: np.ndarray | None = None
        self._aggregates: dict[tuple[str, int | None, str], np.ndarray] = {}
        self._faiss: "OrderedDict[Any, Any]" = OrderedDict()
        self._states: "OrderedDict[tuple[str, str], QueryState]" = OrderedDict()
        if encoder is not None:
            self._check_encoder(encoder)

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, encoder: Any = None, verify: bool | None = None) -> "Searcher":
        return cls(open_index(path, verify=verify), encoder)

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
        for key in ("weights_sha256", "dim", "pooling", "normalize", "query_prefix"):
            if key in stored and key in fp and stored[key] != fp[key]:
                raise IndexError_(
                    f"{self.index.root}: the index was built with encoder {stored.get('model_id')!r} "
                    f"but the loaded encoder {fp.get('model_id')!r} differs ({key})",
                    "search with the encoder the index was built with, or rebuild the index",
                )
        if int(getattr(enc, "dim", self.index.dim)) != self.index.dim:
            raise IndexError_(f"{self.index.root}: encoder dimension {enc.dim} != index dimension {self.index.dim}", "rebuild the index with this encoder")

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
                self._aggregates[key] = language_aggregate(
                    self.index.query_vectors[lang], self.index.query_counts[lang], n, fusion
                )
            return self._aggregates[key]

    def fused_matrix(self, spec: FusionSpec) -> np.ndarray:
        aggs = {l: self.aggregate(l, spec.n, spec.fusion) for l in spec.langs} if not spec.is_plain else {}
        return augmented_matrix(self.passage_matrix, aggs, spec)

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
            while len(self._faiss) > 4:  # bound memory: one matrix per fusion setting
                self._faiss.popitem(last=False)
            return idx

    # ---- batch search -----------------------------------------------------------------
    def search_vectors(self, Q: np.ndarray, k: int = 10, spec: FusionSpec | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner-product top-k for a batch of query vectors: (scores, rows), rows -1 past N."""
        Q = np.ascontiguousarray(np.atleast_2d(Q), dtype=np.float32)
        k = max(1, min(int(k), self.index.size))
        return self._faiss_index(spec).search(Q, k)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.load_encoder().encode_queries(list(texts)), dtype=np.float32)

    def retrieve(
        self,
        queries: Sequence[Query],
        k: int = 100,
        spec: FusionSpec | None = None,
        batch_size: int = 256,
        progress: Any = None,
    ) -> Run:
        """Top-k for every query (a TREC-style run)."""
        run: Run = {}
        docids = [p.docid for p in self.index.passages]
        for start in range(0, len(queries), batch_size):
            batch = queries[start : start + batch_size]
            Q = self.encode_queries([q.text for q in batch])
            scores, rows = self.search_vectors(Q, k, spec)
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
        state = QueryState(text, code, detected, vec, self.passage_matrix @ vec)
        with self._lock:
            self._states[key] = state
            while len(self._states) > 32:
                self._states.popitem(last=False)
        return state

    def _lang_scores(self, state: QueryState, spec: FusionSpec) -> dict[str, np.ndarray]:
        out = {}
        for lang in spec.langs:
            key = (lang, spec.n, spec.fusion)
            if key not in state.lang_scores:
                state.lang_scores[key] = self.aggregate(lang, spec.n, spec.fusion) @ state.vector
            out[lang] = state.lang_scores[key]
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
    ) -> SearchResponse:
        """Encode ``text`` (once; cached) and rank passages plain and augmented."""
        t0 = time.perf_counter()
        spec = self.spec(alpha, fusion, langs, n, weights)
        state = self.query_state(text, lang)
        resp = self.rerank(state, k, spec, augment)
        resp.seconds = time.perf_counter() - t0
        return resp

    def rerank(self, state: QueryState, k: int, spec: FusionSpec, augment: bool = True) -> SearchResponse:
        """Rank again with other fusion settings: no model call, no matrix rebuild."""
        k = max(1, int(k))
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
