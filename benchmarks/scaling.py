"""Scaling: exact search time and index memory at 10k, 100k and 1M passages, and an
approximate FAISS index (IVF, SQ8 codes) with its Recall@10 against exact.

Data: ``synthetic.clustered`` unit vectors (D = 384, 1,000 clusters), queries =
perturbed copies of data points; top-10. Exact = ``Searcher.search_vectors``
(plain spec: FAISS ``IndexFlatIP`` over the passage matrix), its baseline the very
same FAISS index object searched directly (at 1M a second 1.5 GB copy would not
fit the memory budget, and the wrapper's overhead is what is measured). IVF:
``IVF{nlist},SQ8`` with nlist ~ sqrt(N), nprobe 16, trained on <= 64 points per
list; baseline = exact. Memory: bytes FAISS holds (flat: N x D x 4; IVF: the
serialised index). The growth exponent is the least-squares slope of
log(time per query) against log(N).
"""
from __future__ import annotations

import gc
import math
from pathlib import Path

import numpy as np

from .common import Result, interleaved, log, median, timed
from . import synthetic


def _label(n: int) -> str:
    return f"{n // 1_000_000}m" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def _slope(ns: list[int], ts: list[float]) -> float:
    x = np.log(np.asarray(ns, dtype=np.float64))
    y = np.log(np.asarray(ts, dtype=np.float64))
    return float(np.polyfit(x, y, 1)[0])


def _recall(exact: np.ndarray, approx: np.ndarray, k: int = 10) -> float:
    hits = [len(set(a[:k].tolist()) & set(e[:k].tolist())) / k for e, a in zip(exact, approx)]
    return float(np.mean(hits))


def run(quick: bool = False, workdir: Path | None = None) -> list[Result]:
    import faiss

    from xqg_tui.search import Searcher

    sizes = [1_000, 4_000, 16_000] if quick else [10_000, 100_000, 1_000_000]
    nprobe = 16
    results: list[Result] = []
    t_exact: list[float] = []
    t_raw: list[float] = []
    t_ivf: list[float] = []
    for n in sizes:
        label = _label(n)
        nq = 100 if quick else 500  # same batch at every size: FAISS's blocking makes per-query cost depend on it
        reps = 1 if quick else (2 if n >= 1_000_000 else 3)
        log(f"scaling: N={n}: data")
        X = synthetic.clustered(n, seed=3)
        Q = synthetic.queries_near(X, nq, seed=4)
        index = synthetic.make_index(X)
        searcher = Searcher(index)
        spec = searcher.spec(alpha=0.0)
        t_build, _ = timed(lambda: searcher.search_vectors(Q[:1], 10, spec))
        flat = searcher._faiss_index(None)  # the FAISS index search_vectors uses (same object)
        mem_flat = flat.ntotal * flat.d * 4

        # approximate: IVF with SQ8 codes
        nlist = max(16, int(round(math.sqrt(n))))
        ivf = faiss.index_factory(X.shape[1], f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        ivf_core = faiss.extract_index_ivf(ivf)
        ivf_core.cp.niter = 10
        ivf_core.cp.max_points_per_centroid = 64
        rng = np.random.default_rng(5)
        train = X[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
        t_train, _ = timed(lambda: ivf.train(train))
        t_add, _ = timed(lambda: ivf.add(X))
        ivf_core.nprobe = nprobe

        box: dict = {}
        times = interleaved({
            "ours": lambda: searcher.search_vectors(Q, 10, spec),
            "raw": lambda: box.__setitem__("exact", flat.search(Q, 10)[1]),
            "ivf": lambda: box.__setitem__("ivf", ivf.search(Q, 10)[1]),
        }, reps=reps)
        ours_ms, raw_ms, ivf_ms = (median(times[k]) * 1e3 / nq for k in ("ours", "raw", "ivf"))
        t_exact.append(ours_ms)
        t_raw.append(raw_ms)
        t_ivf.append(ivf_ms)
        recall = _recall(box["exact"], box["ivf"])
        mem_ivf = int(faiss.serialize_index(ivf).nbytes)
        results.append(Result(
            f"scale-exact-{label}", ours_ms, raw_ms, "the same faiss.IndexFlatIP searched directly", "ms/query", "lower",
            1.2, note=f"N={n}, {nq} queries per call, top-10; FAISS index built in {t_build:.1f} s",
            extra={"n": n, "queries": nq, "build_s": t_build},
        ))
        ex_ms = raw_ms
        results.append(Result(
            f"scale-ivf-{label}", ivf_ms, ex_ms, "exact faiss.IndexFlatIP", "ms/query", "lower", None,
            note=(f"IVF{nlist},SQ8, nprobe {nprobe}: Recall@10 vs exact {recall:.3f}; train {t_train:.1f} s, "
                  f"add {t_add:.1f} s"),
            extra={"n": n, "nlist": nlist, "nprobe": nprobe, "recall_at_10": recall, "train_s": t_train,
                   "add_s": t_add},
        ))
        results.append(Result(
            f"scale-ivf-recall10-{label}", recall, 1.0, "exact search (recall 1)", "recall@10", "higher", None,
            target_on="ours", note=f"IVF{nlist},SQ8, nprobe {nprobe}, {nq} queries",
        ))
        results.append(Result(
            f"scale-memory-exact-{label}", mem_flat / 2**20, mem_flat / 2**20, "IndexFlatIP (N x D x 4 bytes)", "MiB",
            "lower", None, note=f"N={n}: {mem_flat / n:.0f} bytes per passage",
        ))
        results.append(Result(
            f"scale-memory-ivf-{label}", mem_ivf / 2**20, mem_flat / 2**20, "exact IndexFlatIP", "MiB", "lower", None,
            note=f"IVF{nlist},SQ8 serialised: {mem_ivf / n:.0f} bytes per passage",
        ))
        log(f"scaling: N={n}: exact {ours_ms:.3f} (raw {raw_ms:.3f}) ms/q; IVF {ivf_ms:.3f} ms/q, recall {recall:.3f}")
        del searcher, index, flat, ivf, ivf_core, X, Q, train, box
        gc.collect()

    results.append(Result(
        "scale-exponent-exact", _slope(sizes, t_exact), _slope(sizes, t_raw), "raw FAISS exponent", "exponent",
        "lower", None, note=f"time per query ~ N^e over N = {', '.join(map(str, sizes))} (1 = linear)",
    ))
    results.append(Result(
        "scale-exponent-ivf", _slope(sizes, t_ivf), _slope(sizes, t_exact), "exact search exponent", "exponent",
        "lower", None, note="nlist ~ sqrt(N), fixed nprobe: ideal 0.5",
    ))
    return results
