"""Search, single-query latency, and re-ranking after an alpha / language change.

Index: ``N`` (100k; 20k with --quick) random unit passage vectors, D = 384, seven
languages x 5 generated-query vectors per passage (float16 ``.npy`` files,
memory-mapped as a real index is), alpha 0.2, mean fusion (the offline encoder's
defaults).

* ``search``: 1,000 query vectors, top-10, ``Searcher.search_vectors`` (the
  batch path of ``xqg`` retrieval/evaluation) vs ``faiss.IndexFlatIP.search`` on
  a separate copy of the same fused matrix.
* ``search-single-p50/p99``: the same, one query per call.
* ``search-interactive-p50``: what the app/``xqg search`` does for a new typed
  query once it is encoded (plain + per-language score parts kept for instant
  re-ranking, both rankings, hits with matched queries) vs one raw FAISS search.
* ``alpha-change`` / ``langs-change``: time until the new top-10 is ready after a
  change (``Searcher.rerank`` with the cached score parts) vs naively rebuilding
  the fused matrix from the stored vectors and searching it.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from .common import Result, interleaved, log, median, percentile, timed
from . import synthetic


def _interactive_state(searcher, vec: np.ndarray, text: str = "q"):
    """What ``Searcher.query_state`` builds after encoding (the encoder is not timed here)."""
    from xqg_tui.search import QueryState

    return QueryState(text, "en", False, vec, searcher.passage_matrix @ vec)


def run(quick: bool = False, workdir: Path | None = None) -> list[Result]:
    import faiss

    from xqg_tui.index.fusion import augmented_matrix, language_aggregate
    from xqg_tui.search import Searcher

    n = 5_000 if quick else 100_000
    n_batch = 100 if quick else 1000
    n_single = 30 if quick else 1000
    n_inter = 5 if quick else 50
    nmax = 5
    tmp = Path(tempfile.mkdtemp(prefix="xqg-bench-search-", dir=workdir))
    results: list[Result] = []
    try:
        log(f"search: synthetic index {n} x {synthetic.DIM}, {len(synthetic.LANGS)} langs x {nmax} query vectors (float16, mmap)")
        P = synthetic.random_unit(n, seed=0)
        qv = synthetic.write_query_vectors(tmp / "query_vectors", P, synthetic.LANGS, nmax, dtype="float16")
        index = synthetic.make_index(P, qv, nmax, alpha=0.2, fusion="mean", root=tmp)
        searcher = Searcher(index)
        spec = searcher.spec()
        Q = synthetic.random_unit(max(n_batch, n_single), seed=11)
        t_build, _ = timed(lambda: searcher.search_vectors(Q[:1], 10, spec))  # builds + caches the fused FAISS index
        raw = faiss.IndexFlatIP(synthetic.DIM)
        raw.add(np.ascontiguousarray(searcher.fused_matrix(spec), dtype=np.float32))
        log(f"search: fused index built in {t_build:.1f} s")

        # correctness: same top-10
        s_ours, i_ours = searcher.search_vectors(Q[:50], 10, spec)
        s_raw, i_raw = raw.search(Q[:50], 10)
        same = float(np.mean(i_ours == i_raw))

        # ---- batched
        QB = np.ascontiguousarray(Q[:n_batch])
        times = interleaved(
            {"ours": lambda: searcher.search_vectors(QB, 10, spec), "faiss": lambda: raw.search(QB, 10)},
            reps=2 if quick else 5,
        )
        ours_ms, base_ms = median(times["ours"]) * 1e3 / n_batch, median(times["faiss"]) * 1e3 / n_batch
        results.append(Result(
            "search", ours_ms, base_ms, "faiss.IndexFlatIP.search (same matrix)", "ms/query", "lower", 1.2,
            note=f"{n_batch} queries per call, top-10, N={n}; identical top-10 ids: {same:.3f}",
            extra={"n": n, "queries": n_batch, "ours_qps": 1e3 / ours_ms, "baseline_qps": 1e3 / base_ms,
                   "same_top10": same},
        ))
        log(f"search: batched {ours_ms:.3f} vs {base_ms:.3f} ms/query")

        # ---- single queries, alternating ours / raw per query
        t_ours: list[float] = []
        t_raw: list[float] = []
        for i in range(3):  # warm-up
            searcher.search_vectors(Q[i : i + 1], 10, spec)
            raw.search(Q[i : i + 1], 10)
        for i in range(n_single):
            q = np.ascontiguousarray(Q[i : i + 1])
            pair = [("ours", lambda: searcher.search_vectors(q, 10, spec)), ("raw", lambda: raw.search(q, 10))]
            if i % 2:
                pair.reverse()
            for name, fn in pair:
                dt, _ = timed(fn)
                (t_ours if name == "ours" else t_raw).append(dt * 1e3)
        for pct in (50, 99):
            o, b = percentile(t_ours, pct), percentile(t_raw, pct)
            results.append(Result(
                f"search-single-p{pct}", o, b, "faiss.IndexFlatIP.search, 1 query", "ms", "lower", 1.2,
                note=f"{n_single} single-query calls, top-10, N={n}",
                extra={"n": n, "queries": n_single},
            ))
        log(f"search: single p50 {percentile(t_ours, 50):.2f} vs {percentile(t_raw, 50):.2f} ms")

        # ---- interactive path (new typed query, already encoded)
        def interactive(v: np.ndarray) -> None:
            state = _interactive_state(searcher, v)
            searcher.rerank(state, 10, spec)

        t_int: list[float] = []
        t_int_raw: list[float] = []
        for i in range(n_inter):
            v = Q[i]
            pair = [("ours", lambda: interactive(v)), ("raw", lambda: raw.search(v[None, :], 10))]
            if i % 2:
                pair.reverse()
            for name, fn in pair:
                dt, _ = timed(fn)
                (t_int if name == "ours" else t_int_raw).append(dt * 1e3)
        results.append(Result(
            "search-interactive-p50", median(t_int), median(t_int_raw), "faiss.IndexFlatIP.search, 1 query", "ms", "lower",
            None,
            note=(f"new query in the app / `xqg search` after encoding: plain + {len(spec.langs)} per-language score "
                  "vectors (kept for instant re-ranking), both rankings, hits with matched queries"),
            extra={"n": n, "queries": n_inter, "p99": percentile(t_int, 99)},
        ))

        # ---- alpha / language change
        v = Q[0]
        state = _interactive_state(searcher, v)
        searcher.rerank(state, 10, spec)  # first display: score parts computed and cached
        alphas = [0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.15, 0.25, 0.4, 0.6]
        lang_sets = [("ar", "bn"), ("ja", "ko", "ru"), ("fi",), ("ar", "bn", "fi", "ja", "ko", "ru"), ("te", "ru"),
                     tuple(synthetic.LANGS)]
        fusion = spec.fusion

        def naive(alpha: float, langs: tuple[str, ...]) -> np.ndarray:
            new = searcher.spec(alpha=alpha, langs=langs)
            aggs = {l: language_aggregate(index.query_vectors[l], index.query_counts[l], None, fusion) for l in langs}
            F = augmented_matrix(index.passage_vectors, aggs, new)
            flat = faiss.IndexFlatIP(F.shape[1])
            flat.add(np.ascontiguousarray(F, dtype=np.float32))
            return flat.search(v[None, :], 10)[1][0]

        for kind, changes in (("alpha-change", [(a, tuple(synthetic.LANGS)) for a in alphas]),
                              ("langs-change", [(0.2, ls) for ls in lang_sets])):
            ours_t: list[float] = []
            base_t: list[float] = []
            agree = []
            n_base = 1 if quick else 3
            for j, (alpha, langs) in enumerate(changes):
                new = searcher.spec(alpha=alpha, langs=langs)
                dt, resp = timed(lambda: searcher.rerank(state, 10, new))
                ours_t.append(dt * 1e3)
                if j < n_base:
                    dtb, rows = timed(lambda: naive(alpha, langs))
                    base_t.append(dtb * 1e3)
                    agree.append(float(np.mean([h.docid for h in resp.augmented] == np.array([f"doc{r}" for r in rows]))))
            results.append(Result(
                kind, median(ours_t), median(base_t), "rebuild fused matrix from stored vectors + FAISS search", "ms",
                "lower", 100.0, target_on="ours",
                note=(f"N={n}, {len(synthetic.LANGS)} langs x {nmax} queries stored; ours = Searcher.rerank with cached "
                      f"score parts (both rankings + hits); {len(ours_t)} changes, baseline {len(base_t)}"),
                extra={"n": n, "ours_max_ms": max(ours_t), "same_top10": median(agree)},
            ))
            log(f"{kind}: {median(ours_t):.1f} ms vs naive {median(base_t):.0f} ms")
        del searcher, raw, index, qv
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results
