"""Shared helpers for the scale-out tests (merge, block search, ANN): one reference
index over 20 passages and its 3 shards, built once per session from the tiny
encoder in conftest.py with imported generated queries (no generator model).

The ``ja`` queries are uneven on purpose (one passage has 3, the rest 0-1), so
shards end up with different query-vector widths (NMAX) that merge must pad.
"""
from __future__ import annotations

import json
from pathlib import Path

from xqg_tui.types import Passage

LANGS = ["ar", "ja"]
SHARDS = 3
_BUILT: dict[str, object] = {}


def generated_rows(corpus: list[Passage]) -> list[dict]:
    rows = []
    for i, p in enumerate(corpus):
        ar = [f"ما هي {p.title or 'المدينة'} {j}" for j in range(1 + i % 3)]
        ja = ["東京 大学 いつ 設立", "日本 の 首都", "川 王 人口"] if i == 4 else (["日本 の 首都 は どこ"] if i % 2 else [])
        rows.append({"docid": p.docid, "generated_queries": {"ar": ar, "ja": ja}})
    return rows


def build_scale_indexes(root: Path, encoder_dir: Path, corpus: list[Passage]) -> dict[str, object]:
    """{"ref": Path, "shards": [Path x 3], "encoder": Encoder, "config": f(out, shard, **kw) -> BuildConfig};
    memoised per session."""
    if _BUILT:
        return _BUILT
    from xqg_tui.index.builder import BuildConfig, build_index
    from xqg_tui.io.corpus import write_corpus_jsonl
    from xqg_tui.models.encoder import Encoder

    corpus_file = root / "corpus.jsonl"
    write_corpus_jsonl(corpus_file, corpus)
    gen_file = root / "generated.jsonl"
    gen_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in generated_rows(corpus)), encoding="utf-8")
    enc = Encoder.load(str(encoder_dir))

    def cfg(out: Path, shard=None, **kw) -> BuildConfig:
        return BuildConfig(corpus=corpus_file, out=out, encoder=str(encoder_dir), generator="none", import_generated=gen_file,
                           langs=LANGS, alpha=0.3, fusion="mean", chunk_size=8, shard=shard, **kw)

    build_index(cfg(root / "ref"), encoder=enc)
    shards = []
    for i in range(SHARDS):
        out = root / f"shard{i}"
        build_index(cfg(out, (i, SHARDS)), encoder=enc)
        shards.append(out)
    _BUILT.update(ref=root / "ref", shards=shards, encoder=enc, config=cfg)
    return _BUILT


def run_map(scores, rows, docids) -> list[dict[str, float]]:
    """search_vectors output -> [{docid: score}] per query."""
    return [{docids[int(r)]: float(s) for s, r in zip(srow, rrow) if r >= 0} for srow, rrow in zip(scores, rows)]


def assert_same_ranking(a: dict[str, float], b: dict[str, float], tol: float = 1e-4) -> None:
    """Same docids with the same scores; a docid may differ only at a float near-tie
    on the cut-off (its score then equals the other side's last score)."""
    assert len(a) == len(b)
    for d in set(a) ^ set(b):
        other_min = min(b.values()) if d in a else min(a.values())
        assert abs((a.get(d) if d in a else b[d]) - other_min) < tol, f"{d} is not a near-tie"
    for d in set(a) & set(b):
        assert abs(a[d] - b[d]) < tol, (d, a[d], b[d])
