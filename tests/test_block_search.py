"""Exact search in row blocks over memory-mapped vectors equals in-memory search,
for any fusion spec, and never builds the full matrices."""
from __future__ import annotations

import numpy as np
import pytest

from scale_fixtures import assert_same_ranking, build_scale_indexes, run_map
from xqg_tui.errors import XQGError
from xqg_tui.index.blocks import RowConcat, TopK, memory_budget, parse_size, row_blocks
from xqg_tui.search import Searcher

QUERIES = ["東京 大学 いつ 設立", "Helsinki capital Finland", "ما هي عاصمة مصر", "river museum", "Moscow 1147"]


@pytest.fixture(scope="module")
def scale(tmp_path_factory, tiny_encoder_dir, tiny_corpus):
    return build_scale_indexes(tmp_path_factory.mktemp("scale"), tiny_encoder_dir, tiny_corpus)


def _specs(s: Searcher):
    return [s.spec(alpha=0.0), s.spec(), s.spec(alpha=0.01, fusion="sum"), s.spec(alpha=0.9, fusion="sum", langs=["ja"]),
            s.spec(alpha=0.5, n=1), s.spec(alpha=0.4, weights={"ar": 2.0, "ja": 0.5}), s.spec(alpha=0.3, n=0)]


class _NoFullMatrices(Searcher):
    """Fails if the block path ever builds an N x D matrix."""

    @property
    def passage_matrix(self):
        raise AssertionError("full passage matrix built")

    def aggregate(self, lang, n, fusion):
        raise AssertionError("full aggregate built")


@pytest.mark.parametrize("block_rows", [1, 3, 7])
def test_block_search_equals_in_memory(scale, block_rows):
    enc = scale["encoder"]
    mem = Searcher.open(scale["ref"], encoder=enc)
    blk = _NoFullMatrices.open(scale["ref"], encoder=enc, block_rows=block_rows)
    assert not mem.blockwise(mem.spec()) and blk.blockwise(blk.spec())
    Q = mem.encode_queries(QUERIES)
    ids = [p.docid for p in mem.index.passages]
    for spec in _specs(mem):
        for k in (1, 5, 20):
            s1, r1 = mem.search_vectors(Q, k, spec)
            s2, r2 = blk.search_vectors(Q, k, spec)
            assert s2.shape == (len(QUERIES), k)
            np.testing.assert_allclose(s1, s2, atol=1e-4)
            for a, b in zip(run_map(s1, r1, ids), run_map(s2, r2, ids)):
                assert_same_ranking(a, b)


def test_interactive_search_blockwise(scale):
    enc = scale["encoder"]
    mem = Searcher.open(scale["ref"], encoder=enc)
    blk = _NoFullMatrices.open(scale["ref"], encoder=enc, block_rows=4)
    for spec_kw in ({"alpha": 0.9}, {"alpha": 0.5, "langs": ["ar"], "n": 2}, {"alpha": 0.2, "fusion": "sum"}):
        a, b = mem.search(QUERIES[0], k=8, **spec_kw), blk.search(QUERIES[0], k=8, **spec_kw)
        assert_same_ranking({h.docid: h.score for h in a.augmented}, {h.docid: h.score for h in b.augmented})
        assert_same_ranking({h.docid: h.score for h in a.plain}, {h.docid: h.score for h in b.plain})
    run_a = mem.retrieve([], k=3)
    assert run_a == {} and blk.retrieve([], k=3) == {}


def test_memory_budget_switches_to_blocks(scale, monkeypatch):
    monkeypatch.setenv("XQG_SEARCH_MEMORY", "4k")
    assert memory_budget() == 4096
    s = Searcher.open(scale["ref"], encoder=scale["encoder"])
    assert s.blockwise(s.spec()), "20 x 32 float32 x (3 + 2 langs) is over 4 KiB"
    assert s._rows_per_block(s.spec()) < s.index.size
    monkeypatch.setenv("XQG_SEARCH_MEMORY", "1G")
    assert not Searcher.open(scale["ref"]).blockwise()
    assert parse_size("1.5GiB") == int(1.5 * (1 << 30)) and parse_size("512") == 512
    with pytest.raises(XQGError, match="XQG_SEARCH_MEMORY"):
        parse_size("lots")
    with pytest.raises(XQGError, match="block rows"):
        Searcher.open(scale["ref"], block_rows=0)


def test_row_concat_and_topk_units():
    a = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    b = np.arange(100, 108, dtype=np.float32).reshape(2, 2, 2)
    rc = RowConcat([a, b])
    full = np.concatenate([a, b])
    assert rc.shape == (5, 2, 2) and len(rc) == 5
    for key in (slice(1, 4), slice(0, 5), slice(4, 9), slice(2, 2)):
        np.testing.assert_array_equal(rc[key], full[key])
    np.testing.assert_array_equal(rc[2:5, :1], full[2:5, :1])
    np.testing.assert_array_equal(rc[3, 1], full[3, 1])
    np.testing.assert_array_equal(rc[-1], full[-1])
    np.testing.assert_array_equal(np.asarray(rc), full)
    assert list(row_blocks(10, 4, boundaries=[3, 7])) == [(0, 3), (3, 7), (7, 10)]
    assert list(row_blocks(10, 2, boundaries=[3])) == [(0, 2), (2, 3), (3, 5), (5, 7), (7, 9), (9, 10)]
    scores = np.array([[0.5, 0.9, 0.9, 0.1, 0.7]], dtype=np.float32)
    top = TopK(1, 3)
    for start, stop in row_blocks(5, 2):
        top.add(scores[:, start:stop], start)
    s, r = top.result()
    assert r.tolist() == [[1, 2, 4]], "ties broken by row, as one-shot ranking"
    s, r = TopK(1, 3).result()
    assert r.tolist() == [[-1, -1, -1]]


@pytest.mark.parametrize("layout", ["ref", "sharded", "single"])
def test_default_spec_reads_the_stored_fused_matrix(scale, layout, monkeypatch, tmp_path):
    """For the build's own defaults the block path reads the one fused matrix the
    build stored instead of 1 + languages matrices, with the same results; any
    other spec still computes from the parts."""
    from xqg_tui.index.merge import merge_shards

    enc = scale["encoder"]
    mem = Searcher.open(scale["ref"], encoder=enc)
    path = scale["ref"] if layout == "ref" else merge_shards(scale["shards"], tmp_path / layout, layout=layout).path
    blk = Searcher.open(path, encoder=enc, block_rows=3)
    assert blk.index.stored_fused is not None
    Q = mem.encode_queries(QUERIES)
    want = mem.search_vectors(Q, 10, mem.spec())
    calls: list[str] = []
    real = Searcher._aggregate_block
    monkeypatch.setattr(Searcher, "_aggregate_block", lambda self, *a: calls.append(a[0]) or real(self, *a))
    got = blk.search_vectors(Q, 10, blk.spec())
    assert calls == []  # nothing recomputed from the query vectors
    np.testing.assert_allclose(want[0], got[0], atol=1e-5)
    ids = [p.docid for p in mem.index.passages]
    for a, b in zip(run_map(*want, ids), run_map(*got, [p.docid for p in blk.index.passages])):
        assert_same_ranking(a, b)
    blk.search_vectors(Q, 10, blk.spec(alpha=0.5))
    assert calls  # another alpha: computed from the parts
