"""Memory per passage with 35 generated queries kept (7 languages x 5).

Real index folders written by ``build_index`` (``--dtype float32`` and
``float16``) from imported generated queries, with a stand-in encoder that returns
seeded random unit vectors (the layout, not the model, is measured): bytes of
the vector files (passage vectors, per-language query vectors, counts, fused
vectors) per passage. Texts (``passages.jsonl``, ``generated.jsonl``) are the same
in every layout and reported separately.

The naive layout, measured the same way (files written with ``np.save``):
every vector float32, the 35 query vectors of each passage as rows of one flat
(N x 35, D) matrix plus an int64 passage id per row, the passage matrix and the
fused matrix.

RAM while searching: what a ``Searcher`` holds after a search that uses all seven
languages (passage matrix, one aggregate per language, the fused FAISS matrix;
query vectors stay memory-mapped on disk) vs loading every vector as float32.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .common import Result, log

LANGS = ("ar", "bn", "fi", "ja", "ko", "ru", "te")
PER_LANG = 5
DIM = 384


class RandomEncoder:
    """Seeded random unit vectors per text: an encoder stand-in for layout measurements."""

    dim = DIM
    normalize = True

    def __init__(self) -> None:
        self.calls = 0

    def _vec(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def encode_passages(self, passages, **_: object) -> np.ndarray:
        self.calls += 1
        texts = [getattr(p, "text", p) if not isinstance(p, tuple) else p[1] for p in passages]
        return np.stack([self._vec(str(t)) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_queries(self, texts, **_: object) -> np.ndarray:
        self.calls += 1
        return np.stack([self._vec("q:" + t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def fingerprint(self) -> dict:
        return {"model_id": "random", "dim": self.dim, "normalize": True, "pooling": "mean",
                "query_prefix": "", "passage_prefix": ""}


def run(quick: bool = False, workdir: Path | None = None) -> list[Result]:
    from xqg_tui.index.builder import BuildConfig, build_index
    from xqg_tui.index.store import open_index
    from xqg_tui.search import Searcher

    n = 40 if quick else 1000
    tmp = Path(tempfile.mkdtemp(prefix="xqg-bench-memory-", dir=workdir))
    results: list[Result] = []
    try:
        corpus = tmp / "corpus.jsonl"
        generated = tmp / "generated.jsonl"
        with open(corpus, "w", encoding="utf-8") as c, open(generated, "w", encoding="utf-8") as g:
            for i in range(n):
                docid = f"d{i}"
                c.write(json.dumps({"docid": docid, "title": f"Title {i}", "text": f"Passage number {i} about topic {i % 97}."}) + "\n")
                g.write(json.dumps({"docid": docid, "generated_queries": {
                    lang: [f"{lang} question {j} about passage {i}?" for j in range(PER_LANG)] for lang in LANGS}},
                    ensure_ascii=False) + "\n")
        per_passage: dict[str, float] = {}
        text_bytes = 0.0
        ram: dict[str, float] = {}
        for dtype in ("float32", "float16"):
            out = tmp / f"index-{dtype}"
            build_index(BuildConfig(corpus=corpus, out=out, encoder="random", import_generated=generated,
                                    dtype=dtype, chunk_size=256), encoder=RandomEncoder())
            manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            data = out / manifest["data_dir"]
            vec = sum(p.stat().st_size for p in data.rglob("*.npy"))
            txt = sum(p.stat().st_size for p in data.rglob("*.jsonl"))
            per_passage[dtype] = vec / n
            text_bytes = txt / n
            if dtype == "float16":
                idx = open_index(out)
                s = Searcher(idx)
                spec = s.spec()
                v = np.asarray(idx.passage_vectors[0], dtype=np.float32)
                from xqg_tui.search import QueryState

                s.rerank(QueryState("q", "en", False, v, s.passage_matrix @ v), 10, spec)
                s.search_vectors(v[None, :], 10, spec)
                held = s.passage_matrix.nbytes + sum(a.nbytes for a in s._aggregates.values())
                held += sum(ix.ntotal * ix.d * 4 for ix in s._faiss.values())
                ram["ours"] = held / n
        # naive layout, float32
        naive = tmp / "naive"
        naive.mkdir()
        nq = n * len(LANGS) * PER_LANG
        np.save(naive / "passages.npy", np.zeros((n, DIM), np.float32))
        np.save(naive / "queries.npy", np.zeros((nq, DIM), np.float32))
        np.save(naive / "query_owner.npy", np.zeros(nq, np.int64))
        np.save(naive / "fused.npy", np.zeros((n, DIM), np.float32))
        naive_pp = sum(p.stat().st_size for p in naive.glob("*.npy")) / n
        ram["naive"] = (2 + len(LANGS) * PER_LANG) * DIM * 4 + len(LANGS) * PER_LANG * 8
        for dtype in ("float32", "float16"):
            results.append(Result(
                f"memory-per-passage-{'fp32' if dtype == 'float32' else 'fp16'}", per_passage[dtype] / 1024,
                naive_pp / 1024, "naive layout (float32, flat query matrix + int64 owner ids)", "KiB/passage", "lower",
                None,
                note=(f"index --dtype {dtype}, {len(LANGS)} langs x {PER_LANG} queries, D={DIM}: vector files per "
                      f"passage (texts add {text_bytes / 1024:.2f} KiB in every layout)"),
                extra={"bytes_per_passage": per_passage[dtype], "naive_bytes_per_passage": naive_pp,
                       "text_bytes_per_passage": text_bytes, "passages": n},
            ))
        results.append(Result(
            "memory-search-ram-per-passage", ram["ours"] / 1024, ram["naive"] / 1024,
            "every vector loaded as float32", "KiB/passage", "lower", None,
            note=("Searcher after a 7-language search: float32 passage matrix + 7 aggregates + fused FAISS matrix; "
                  "the 35 query vectors per passage stay memory-mapped"),
        ))
        log(f"memory: {per_passage['float32'] / 1024:.1f} (fp32) / {per_passage['float16'] / 1024:.1f} (fp16) vs naive "
            f"{naive_pp / 1024:.1f} KiB per passage")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results
