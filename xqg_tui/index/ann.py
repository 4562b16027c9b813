"""Approximate search: faiss HNSW and IVF-PQ over the fused matrix of one spec.

``INDEX/ann/KIND.faiss`` is written with ``faiss.write_index`` (never pickle)
next to ``INDEX/ann/KIND.json``, the sidecar written last: the fusion spec, the
build parameters, the build time, what the vectors were (a digest of the
index's vector-file checksums, so a rebuild makes the ANN index stale), and
recall@10/@100 against exact search on probe vectors. Searching refuses an ANN
index that is absent, half-written, or built for another spec or other vectors.

Probe vectors: held-out query vectors when given (``queries``), else the first
stored generated-query vector of sampled passages (query-like vectors that need
no encoder), else sampled passage vectors.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexError_, XQGError
from ..io.atomic import atomic_write_json
from . import format as fmt
from .blocks import row_blocks
from .fusion import FusionSpec

ANN_DIR = "ann"
KINDS = ("hnsw", "ivfpq")
SIDECAR_FORMAT = "xqg-ann"
SIDECAR_VERSION = 1
VERIFY_BYTES = 512 << 20  # hash the .faiss file on load below this size (sizes always checked)


@dataclass
class AnnParams:
    """Build and search parameters; ``None`` = chosen from the index size and dimension."""

    m: int | None = None  # HNSW: links per node; IVF-PQ: sub-quantizers (divides D)
    ef_construction: int | None = None  # HNSW
    ef: int | None = None  # HNSW efSearch
    nlist: int | None = None  # IVF lists
    nbits: int | None = None  # PQ bits per sub-quantizer
    nprobe: int | None = None  # IVF lists visited per query

    def resolved(self, kind: str, n: int, dim: int) -> dict[str, int]:
        if kind == "hnsw":
            m = self.m or 32
            return {"m": m, "ef_construction": self.ef_construction or 80, "ef": self.ef or 64}
        nlist = self.nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
        # PQ trains 2**nbits centroids per sub-quantizer: needs at least that many rows.
        nbits = self.nbits or max(1, min(8, int(math.log2(max(2, n)))))
        m = self.m or max(d for d in range(1, max(1, min(64, dim // 4)) + 1) if dim % d == 0)
        if dim % m:
            raise XQGError(f"--m {m} must divide the vector dimension {dim} for IVF-PQ")
        if nlist > n or 2**nbits > n:
            raise XQGError(f"IVF-PQ needs at least nlist ({nlist}) and 2**nbits ({2 ** nbits}) vectors to train on; the index has {n}", "lower --nlist / --nbits")
        return {"nlist": nlist, "m": m, "nbits": nbits, "nprobe": self.nprobe or min(nlist, 16)}


def spec_to_dict(spec: FusionSpec) -> dict[str, Any]:
    d = asdict(spec)
    d["langs"] = list(spec.langs)
    d["weights"] = [list(w) for w in spec.weights]
    if spec.is_plain:  # every plain spec scores the same: store one canonical form
        d = {"alpha": 0.0, "fusion": "sum", "langs": [], "n": None, "weights": []}
    return d


def describe_spec(d: dict[str, Any]) -> str:
    if not d.get("langs") or d.get("alpha") == 0.0 or d.get("n") == 0:
        return "plain (no generated queries)"
    extra = f", {d['n']} per language" if d.get("n") is not None else ""
    w = f", weights {dict(d['weights'])}" if d.get("weights") else ""
    return f"alpha {d['alpha']:g} {d['fusion']} {','.join(d['langs'])}{extra}{w}"


def vectors_identity(index: Any) -> str:
    """Digest of the checksums of every vector file (of every shard): changes when
    the index is rebuilt with other vectors, not when only search defaults change."""
    indexes = getattr(index, "shards", None) or [index]
    h = hashlib.sha256()
    for idx in indexes:
        m = idx.manifest
        for rel in sorted(m["files"]):
            name = rel.split("/", 1)[-1]
            if name.endswith(".npy") and name != "fused_vectors.npy":
                h.update(f"{name}\0{m['files'][rel].get('sha256')}\n".encode())
        h.update(b"--\n")
    return h.hexdigest()


def ann_paths(root: Path, kind: str) -> tuple[Path, Path]:
    if kind not in KINDS:
        raise XQGError(f"ANN kind must be one of {', '.join(KINDS)}, not {kind!r}")
    folder = Path(root) / ANN_DIR
    return folder / f"{kind}.faiss", folder / f"{kind}.json"


class AnnIndex:
    """A loaded faiss index plus its sidecar."""

    def __init__(self, kind: str, faiss_index: Any, meta: dict[str, Any], path: Path) -> None:
        self.kind = kind
        self.faiss = faiss_index
        self.meta = meta
        self.path = path

    def check(self, index: Any, spec: FusionSpec) -> None:
        """Refuse a stale ANN index: other vectors, or another fusion spec."""
        hint = f"rebuild it: xqg ann build {index.root} --kind {self.kind} (with the same --alpha/--fusion/--langs as the search)"
        if self.meta.get("vectors") != vectors_identity(index) or int(self.meta.get("rows", -1)) != index.size:
            raise IndexError_(f"{self.path}: stale ANN index (the index was rebuilt since)", hint)
        want = spec_to_dict(spec)
        if self.meta.get("spec") != want:
            raise IndexError_(
                f"{self.path}: stale ANN index: built for {describe_spec(self.meta.get('spec') or {})}, this search uses {describe_spec(want)}",
                hint,
            )

    def raw_search(self, Q: np.ndarray, k: int, ef: int | None = None, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        params = self.meta.get("params", {})
        if self.kind == "hnsw":
            sp = faiss.SearchParametersHNSW(efSearch=max(int(ef or params.get("ef", 64)), k))
        else:
            sp = faiss.SearchParametersIVF(nprobe=int(nprobe or params.get("nprobe", 1)))
        D, I = self.faiss.search(np.ascontiguousarray(Q, dtype=np.float32), k, params=sp)
        return D, I.astype(np.int64)

    def search(self, searcher: Any, Q: np.ndarray, k: int, ef: int | None = None, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k candidates, re-scored exactly with the fused rows (PQ scores are
        approximate) and re-sorted; rows -1 where fewer than k were found."""
        spec = self._spec()
        _, I = self.raw_search(Q, k, ef, nprobe)
        scores = np.full(I.shape, -np.inf, dtype=np.float32)
        for qi in range(I.shape[0]):
            found = [int(r) for r in I[qi] if r >= 0]
            if not found:
                continue
            s = searcher.exact_row_scores(Q[qi], found, spec)
            order = np.lexsort((np.asarray(found), -s))
            scores[qi, : len(found)] = s[order]
            I[qi, : len(found)] = np.asarray(found)[order]
            I[qi, len(found) :] = -1
        return scores, I

    def _spec(self) -> FusionSpec:
        d = self.meta["spec"]
        return FusionSpec(alpha=float(d["alpha"]), fusion=d["fusion"], langs=tuple(d["langs"]), n=d["n"],
                          weights=tuple((str(a), float(b)) for a, b in d["weights"]))


def load_ann(index: Any, kind: str) -> AnnIndex:
    import faiss

    path, side = ann_paths(index.root, kind)
    hint = f"build it: xqg ann build {index.root} --kind {kind}"
    if not side.is_file() or not path.is_file():
        raise IndexError_(f"{index.root}: no {kind} ANN index (no {ANN_DIR}/{kind}.json)", hint)
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise IndexError_(f"{side}: damaged ANN sidecar", hint) from None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT or meta.get("format_version") != SIDECAR_VERSION or meta.get("kind") != kind:
        raise IndexError_(f"{side}: not an xqg ANN sidecar of this version", hint)
    size = path.stat().st_size
    if size != meta.get("file_bytes") or (size <= VERIFY_BYTES and fmt.sha256_file(path) != meta.get("file_sha256")):
        raise IndexError_(f"{path}: does not match its sidecar (replaced or half-written)", hint)
    try:
        fi = faiss.read_index(str(path))
    except RuntimeError as e:
        raise IndexError_(f"{path}: cannot be read by faiss ({str(e).splitlines()[0][:120]})", hint) from None
    return AnnIndex(kind, fi, meta, path)


def probe_vectors(index: Any, count: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """Query-like vectors for measuring recall without an encoder (see module doc)."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(index.size, size=min(count, index.size), replace=False))
    out = []
    kind = "passage vectors"
    for r in rows:
        vec = None
        for lang in index.langs if getattr(index, "store", "full") == "full" else ():
            if int(index.query_counts[lang][r]) > 0:
                vec = np.asarray(index.query_vectors[lang][int(r), 0], dtype=np.float32)
                kind = "generated-query vectors"
                break
        out.append(vec if vec is not None else np.asarray(index.passage_vectors[int(r)], dtype=np.float32))
    return np.stack(out).astype(np.float32), kind


def recall_at(exact: np.ndarray, approx: np.ndarray, k: int) -> float:
    """Mean share of the exact top-k rows found in the approximate top-k."""
    k = min(k, exact.shape[1])
    hits = [len(set(e[:k][e[:k] >= 0]) & set(a[:k][a[:k] >= 0])) / max(1, int((e[:k] >= 0).sum())) for e, a in zip(exact, approx)]
    return float(np.mean(hits)) if hits else 0.0


def measure(searcher: Any, ann: AnnIndex, probes: np.ndarray, spec: FusionSpec, ef: int | None = None, nprobe: int | None = None) -> dict[str, Any]:
    """Recall@10/@100 of ``ann`` against exact search, and time per query of each."""
    k = min(100, searcher.index.size)
    t0 = time.perf_counter()
    _, exact = searcher.search_vectors(probes, k, spec)
    t1 = time.perf_counter()
    _, approx = ann.raw_search(probes, k, ef, nprobe)
    t2 = time.perf_counter()
    n = max(1, probes.shape[0])
    return {
        "recall@10": round(recall_at(exact, approx, 10), 4),
        "recall@100": round(recall_at(exact, approx, 100), 4),
        "k": k,
        "probes": int(probes.shape[0]),
        "exact_ms_per_query": round(1000 * (t1 - t0) / n, 4),
        "ann_ms_per_query": round(1000 * (t2 - t1) / n, 4),
    }


def build_ann(
    searcher: Any,
    kind: str,
    spec: FusionSpec,
    params: AnnParams | None = None,
    probes: np.ndarray | None = None,
    sample: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Build INDEX/ann/KIND.faiss over the fused matrix of ``spec`` (read in row
    blocks) and its sidecar; return the sidecar."""
    import faiss

    index = searcher.index
    n, dim = index.size, index.dim
    p = (params or AnnParams()).resolved(kind, n, dim)
    path, side = ann_paths(index.root, kind)
    path.parent.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    rows = searcher._rows_per_block(spec)
    if kind == "hnsw":
        fi = faiss.IndexHNSWFlat(dim, p["m"], faiss.METRIC_INNER_PRODUCT)
        fi.hnsw.efConstruction = p["ef_construction"]
    else:
        fi = faiss.index_factory(dim, f"IVF{p['nlist']},PQ{p['m']}x{p['nbits']}", faiss.METRIC_INNER_PRODUCT)
        # Small indexes train on fewer rows than faiss's rule of thumb: quiet its warning
        # (the measured recall in the sidecar says how good the result is).
        faiss.extract_index_ivf(fi).cp.min_points_per_centroid = 1
        faiss.downcast_index(fi).pq.cp.min_points_per_centroid = 1
        # index_factory turns on polysemous training for PQ..x8: a simulated-annealing
        # reordering of the codes for Hamming pre-filtering, which search never uses
        # (polysemous_ht = 0). It made training ~20x slower (PQ16x8 on 3,000 rows:
        # 85 s vs 4 s; an IVF-PQ on 20k passages did not finish in 13 minutes).
        faiss.downcast_index(fi).do_polysemous_training = False
        # Train on a sample of rows gathered block by block (never the whole matrix).
        want = min(n, max(256 * p["nlist"], 64 * 2 ** p["nbits"], 10_000))
        pick = np.sort(np.random.default_rng(seed).choice(n, size=want, replace=False))
        train = [searcher.fused_rows(spec, a, b)[pick[(pick >= a) & (pick < b)] - a] for a, b in row_blocks(n, rows)]
        fi.train(np.ascontiguousarray(np.concatenate(train), dtype=np.float32))
    for a, b in row_blocks(n, rows):
        fi.add(np.ascontiguousarray(searcher.fused_rows(spec, a, b), dtype=np.float32))
    build_seconds = time.perf_counter() - t0
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        faiss.write_index(fi, str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    meta: dict[str, Any] = {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "kind": kind,
        "file": path.name,
        "file_bytes": path.stat().st_size,
        "file_sha256": fmt.sha256_file(path),
        "spec": spec_to_dict(spec),
        "params": p,
        "rows": n,
        "dim": dim,
        "vectors": vectors_identity(index),
        "encoder": index.manifest.get("encoder"),
        "faiss_version": getattr(faiss, "__version__", None),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(build_seconds, 3),
    }
    ann = AnnIndex(kind, fi, meta, path)
    if probes is None:
        probes, probe_kind = probe_vectors(index, sample, seed)
    else:
        probe_kind = "held-out query vectors"
    meta["recall"] = {**measure(searcher, ann, probes, spec), "probe_kind": probe_kind}
    atomic_write_json(side, meta)  # last: the pair is complete
    searcher._ann.pop(kind, None)
    return meta


def eval_ann(searcher: Any, kind: str, spec: FusionSpec, probes: np.ndarray | None = None, sample: int = 200, seed: int = 1,
             ef: int | None = None, nprobe: int | None = None) -> dict[str, Any]:
    """Recall and speed of the built ANN index against exact search (fresh probes)."""
    ann = searcher.ann_index(kind, spec)
    probe_kind = "held-out query vectors"
    if probes is None:
        probes, probe_kind = probe_vectors(searcher.index, sample, seed)
    res = measure(searcher, ann, probes, spec, ef, nprobe)
    res.update(kind=kind, spec=ann.meta["spec"], params={**ann.meta["params"], **({"ef": ef} if ef else {}), **({"nprobe": nprobe} if nprobe else {})},
               probe_kind=probe_kind, build_seconds=ann.meta.get("build_seconds"))
    res["speedup"] = round(res["exact_ms_per_query"] / res["ann_ms_per_query"], 2) if res["ann_ms_per_query"] else None
    return res
