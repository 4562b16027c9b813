"""Approximate search: HNSW and IVF-PQ built under INDEX/ann/ with a sidecar that
reports recall; search uses them; a stale or missing ANN index is refused."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from scale_fixtures import assert_same_ranking, build_scale_indexes
from xqg_tui.errors import IndexError_
from xqg_tui.index.ann import AnnParams, build_ann, eval_ann
from xqg_tui.index.merge import merge_shards
from xqg_tui.search import Searcher


@pytest.fixture(scope="module")
def scale(tmp_path_factory, tiny_encoder_dir, tiny_corpus):
    return build_scale_indexes(tmp_path_factory.mktemp("scale"), tiny_encoder_dir, tiny_corpus)


@pytest.fixture()
def index(scale, tmp_path):
    out = tmp_path / "idx"
    shutil.copytree(scale["ref"], out)
    return out


def test_build_reports_recall_and_search_uses_it(scale, index):
    enc = scale["encoder"]
    s = Searcher.open(index, encoder=enc)
    spec = s.spec()
    meta = build_ann(s, "hnsw", spec, AnnParams(m=8))
    assert (index / "ann" / "hnsw.faiss").is_file() and (index / "ann" / "hnsw.json").is_file()
    side = json.loads((index / "ann" / "hnsw.json").read_text())
    assert side["spec"]["alpha"] == 0.3 and side["params"]["m"] == 8 and side["build_seconds"] >= 0
    # HNSW over 20 rows is exact up to the order of (many) float ties of the tiny model.
    assert side["recall"]["recall@10"] >= 0.8 and side["recall"]["recall@100"] >= 0.8
    assert side["recall"]["probe_kind"] == "generated-query vectors" and meta["rows"] == 20
    assert not (index / "ann" / "hnsw.faiss").read_bytes().startswith(b"\x80"), "faiss format, not a pickle"
    exact = s.search("Tokyo capital Japan", k=5)
    approx = s.search("Tokyo capital Japan", k=5, ann="hnsw", ef=16)
    assert_same_ranking({h.docid: h.score for h in approx.augmented}, {h.docid: h.score for h in exact.augmented})
    assert [h.score for h in approx.augmented] == pytest.approx([h.score for h in exact.augmented], abs=1e-4)
    assert approx.plain == [] and any("approximate" in w for w in approx.warnings)
    Q = s.encode_queries(["Tokyo", "Nile river"])
    (es, er), (as_, ar) = s.search_vectors(Q, 4, spec), s.search_vectors(Q, 4, spec, ann="hnsw")
    assert np.allclose(es, as_, atol=1e-4)

    meta = build_ann(s, "ivfpq", spec)
    assert meta["params"]["nbits"] <= 4 and 0.0 <= meta["recall"]["recall@10"] <= 1.0
    res = eval_ann(s, "ivfpq", spec, nprobe=1)
    assert {"recall@10", "recall@100", "exact_ms_per_query", "ann_ms_per_query", "speedup"} <= set(res)
    assert len(s.search("Tokyo", k=3, ann="ivfpq").augmented) == 3


def test_stale_or_missing_ann_refused(scale, index):
    s = Searcher.open(index, encoder=scale["encoder"])
    with pytest.raises(IndexError_, match="no hnsw ANN index"):
        s.search("Tokyo", ann="hnsw")
    build_ann(s, "hnsw", s.spec())
    with pytest.raises(IndexError_, match=r"stale ANN index: built for alpha 0.3 mean ar,ja, this search uses alpha 0.9"):
        s.search("Tokyo", alpha=0.9, ann="hnsw")
    with pytest.raises(IndexError_, match="stale"):
        s.search("Tokyo", augment=False, ann="hnsw")
    side = index / "ann" / "hnsw.json"
    meta = json.loads(side.read_text())
    meta["vectors"] = "0" * 64  # as after a rebuild with other vectors
    side.write_text(json.dumps(meta))
    with pytest.raises(IndexError_, match="index was rebuilt"):
        Searcher.open(index).search_vectors(np.zeros((1, 32), np.float32), 3, s.spec(), ann="hnsw")
    (index / "ann" / "hnsw.faiss").write_bytes(b"half")
    with pytest.raises(IndexError_, match="does not match its sidecar"):
        Searcher.open(index).search_vectors(np.zeros((1, 32), np.float32), 3, s.spec(), ann="hnsw")


def test_cli_ann_on_sharded_index(scale, tmp_path, capsys):
    from xqg_tui.cli import main

    merged = merge_shards(scale["shards"], tmp_path / "m").path
    assert main(["ann", "build", str(merged), "--kind", "hnsw", "--json", "--block-rows", "4"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["recall"]["recall@10"] >= 0.8
    assert main(["ann", "eval", str(merged), "--kind", "hnsw", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recall@10"] >= 0.8
    assert main(["search", "--index", str(merged), "--ann", "hnsw", "--k", "3", "--json", "Tokyo"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 3
    assert main(["search", "--index", str(merged), "--ann", "hnsw", "--alpha", "0.9", "Tokyo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xqg: error:") and "stale ANN index" in err and err.count("\n") == 1
    assert main(["search", "--index", str(merged), "--ann", "ivfpq", "Tokyo"]) == 2
    assert "no ivfpq ANN index" in capsys.readouterr().err
