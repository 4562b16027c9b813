"""`xqg merge`: both layouts search exactly like the unsharded index; validation
errors are one clear line; a failed merge leaves nothing behind."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from scale_fixtures import assert_same_ranking, build_scale_indexes, run_map
from xqg_tui.errors import XQGError
from xqg_tui.index import merge as merge_mod
from xqg_tui.index.merge import merge_shards
from xqg_tui.index.sharded import ShardedIndex, open_any
from xqg_tui.index.store import open_index
from xqg_tui.search import Searcher

QUERIES = ["東京 大学 いつ 設立", "Helsinki capital Finland", "ما هي عاصمة مصر", "river museum"]


@pytest.fixture(scope="module")
def scale(tmp_path_factory, tiny_encoder_dir, tiny_corpus):
    return build_scale_indexes(tmp_path_factory.mktemp("scale"), tiny_encoder_dir, tiny_corpus)


@pytest.fixture(scope="module")
def merged(scale, tmp_path_factory):
    root = tmp_path_factory.mktemp("merged")
    shards = list(reversed(scale["shards"]))  # any order on the command line
    return {layout: merge_shards(shards, root / layout, layout=layout) for layout in ("sharded", "single")}


def _specs(s: Searcher):
    return [s.spec(alpha=0.0), s.spec(), s.spec(alpha=0.9, fusion="sum"), s.spec(alpha=0.5, langs=["ja"], n=1),
            s.spec(alpha=0.4, weights={"ar": 2.0, "ja": 0.5})]


@pytest.mark.parametrize("layout", ["sharded", "single"])
def test_merged_search_equals_unsharded(scale, merged, layout):
    enc = scale["encoder"]
    ref = Searcher.open(scale["ref"], encoder=enc)
    res = merged[layout]
    s = Searcher.open(res.path, encoder=enc)
    assert s.index.size == ref.index.size == 20
    assert isinstance(s.index, ShardedIndex) == (layout == "sharded")
    assert sorted(p.docid for p in s.index.passages) == sorted(p.docid for p in ref.index.passages)
    Q = ref.encode_queries(QUERIES)
    ref_ids = [p.docid for p in ref.index.passages]
    ids = [p.docid for p in s.index.passages]
    for spec, rspec in zip(_specs(s), _specs(ref)):
        for k in (5, 20):
            a = run_map(*s.search_vectors(Q, k, spec), ids)
            b = run_map(*ref.search_vectors(Q, k, rspec), ref_ids)
            for x, y in zip(a, b):
                assert_same_ranking(x, y)
    # Interactive search (score parts, rerank without the model) works too.
    r, r_ref = s.search(QUERIES[0], k=6, alpha=0.9), ref.search(QUERIES[0], k=6, alpha=0.9)
    assert_same_ranking({h.docid: h.score for h in r.augmented}, {h.docid: h.score for h in r_ref.augmented})
    assert_same_ranking({h.docid: h.score for h in r.plain}, {h.docid: h.score for h in r_ref.plain})
    hit = r.augmented[0]
    ref_hit = next(h for h in r_ref.augmented if h.docid == hit.docid)
    assert [m.text for m in hit.matched] == [m.text for m in ref_hit.matched]
    assert hit.lang_contributions == pytest.approx(ref_hit.lang_contributions, abs=1e-4)
    calls = enc.calls
    again = s.rerank(s.query_state(QUERIES[0]), 6, s.spec(alpha=0.1, langs=["ar"]))
    assert enc.calls == calls and len(again.augmented) == 6


def test_sharded_layout_hard_links_and_reads_shards(scale, merged):
    res = merged["sharded"]
    assert res.linked_files > 0 and res.copied_files == 0
    m = json.loads((res.path / "manifest.json").read_text())
    assert m["kind"] == "sharded" and [e["index"] for e in m["shards"]] == [0, 1, 2]
    assert m["counts"]["passages"] == 20 and "shard" not in m
    shard0 = open_index(res.path / m["shards"][0]["path"])
    src = open_index(scale["shards"][0])
    assert os.path.samefile(shard0.root / shard0.manifest["data_dir"] / "passage_vectors.npy",
                            src.root / src.manifest["data_dir"] / "passage_vectors.npy")
    # No copy of the vectors: the concatenated view reads the shards' memory maps.
    idx = open_any(res.path)
    assert np.array_equal(idx.passage_vectors[5:15], np.concatenate([np.asarray(x.passage_vectors) for x in idx.shards])[5:15])


def test_single_layout_is_an_ordinary_index(scale, merged):
    res = merged["single"]
    idx = open_index(res.path, verify=True)
    ref = open_index(scale["ref"])
    assert "shard" not in idx.manifest and idx.manifest["sharding"]["count"] == 3
    assert idx.query_vectors["ja"].shape == (20, 3, idx.dim), "narrower shards are zero-padded"
    shards = [open_index(p) for p in scale["shards"]]
    # Exactly the shards' vectors, concatenated (and zero-padded where narrower) ...
    np.testing.assert_array_equal(np.asarray(idx.passage_vectors), np.concatenate([np.asarray(x.passage_vectors) for x in shards]))
    ja = np.asarray(idx.query_vectors["ja"])
    start = 0
    for x in shards:
        width = x.query_vectors["ja"].shape[1]
        np.testing.assert_array_equal(ja[start : start + x.size, :width], np.asarray(x.query_vectors["ja"]))
        assert not ja[start : start + x.size, width:].any()
        start += x.size
    # ... which are the unsharded index's up to encoder batching (padding) rounding.
    order = [ref.docid_index[p.docid] for p in idx.passages]
    np.testing.assert_allclose(np.asarray(idx.passage_vectors), np.asarray(ref.passage_vectors)[order], atol=1e-5)
    for lang in ("ar", "ja"):
        np.testing.assert_array_equal(idx.query_counts[lang], ref.query_counts[lang][order])
        np.testing.assert_allclose(np.asarray(idx.query_vectors[lang]), np.asarray(ref.query_vectors[lang])[order], atol=1e-5)
    assert idx.generated_for("d05") == ref.generated_for("d05")
    assert idx.manifest["generation"]["equal_counts"] == ref.manifest["generation"]["equal_counts"]


def test_cli_merge_search_eval_verify(scale, tmp_path, capsys):
    from xqg_tui.cli import main

    out = tmp_path / "m"
    assert main(["merge", "--out", str(out), "--json", *map(str, scale["shards"])]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "sharded" and info["passages"] == 20
    assert main(["search", "--index", str(out), "--k", "3", "--json", "Tokyo"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 3
    assert main(["index", "verify", str(out)]) == 0
    assert "OK (20 passages" in capsys.readouterr().out
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"id": "q1", "question": "Tokyo capital", "answers": ["Japan"], "lang": "ja"}) + "\n")
    run = tmp_path / "run.trec"
    assert main(["retrieve", "--index", str(out), "--queries", str(queries), "--out", str(run), "--quiet"]) == 0
    assert main(["eval", "--run", str(run), "--queries", str(queries), "--index", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["per_language"]["ja"]["R@2kt"] == 1.0


def _edited_copy(src: Path, dst: Path, edit) -> Path:
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text())
    edit(m)
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def _one_line_error(paths, out, match: str) -> None:
    with pytest.raises(XQGError, match=match) as e:
        merge_shards(paths, out)
    assert "\n" not in e.value.one_line()
    assert not out.exists()


def test_merge_validation_errors(scale, tmp_path):
    s0, s1, s2 = scale["shards"]
    out = tmp_path / "out"
    _one_line_error([s0, s1], out, r"shard 2 of 3 missing")
    _one_line_error([s0, s1, s2, s1], out, r"shard 1/3 given twice")
    _one_line_error([scale["ref"], s1], out, r"not a shard")
    other_corpus = _edited_copy(s2, tmp_path / "c", lambda m: m["shard"].update(corpus_sha256="0" * 64))
    _one_line_error([s0, s1, other_corpus], out, r"another corpus")
    other_count = _edited_copy(s2, tmp_path / "n", lambda m: m["shard"].update(count=4))
    _one_line_error([s0, s1, other_count], out, r"shard of 4 shards")
    other_enc = _edited_copy(s2, tmp_path / "e", lambda m: m["encoder"].update(weights_sha256="f" * 64))
    _one_line_error([s0, s1, other_enc], out, r"another encoder")
    other_alpha = _edited_copy(s2, tmp_path / "a", lambda m: m["search_defaults"].update(alpha=0.7))
    _one_line_error([s0, s1, other_alpha], out, r"fusion settings")
    other_gen = _edited_copy(s2, tmp_path / "g", lambda m: m["generation"].update(seed=99))
    _one_line_error([s0, s1, other_gen], out, r"generation settings differ .*seed")
    # Shard 1's passages relabelled as shard 2: every number present, docids repeated.
    dup = _edited_copy(s1, tmp_path / "d", lambda m: m["shard"].update(index=2))
    _one_line_error([s0, s1, dup], out, r"docid '.+' is in .+ and in")
    (out / "x").mkdir(parents=True)
    with pytest.raises(XQGError, match="not empty"):
        merge_shards([s0, s1, s2], out)


@pytest.mark.parametrize("layout", ["sharded", "single"])
def test_failed_merge_leaves_nothing(scale, tmp_path, monkeypatch, layout):
    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(merge_mod, "_concat_npy" if layout == "single" else "_link_or_copy", boom)
    out = tmp_path / "out"
    with pytest.raises(OSError):
        merge_shards(scale["shards"], out, layout=layout)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [], "no temporary folder left behind"


def test_sums_store_shards_merge_and_search(scale, tmp_path):
    from xqg_tui.index.builder import build_index

    enc, cfg = scale["encoder"], scale["config"]
    build_index(cfg(tmp_path / "ref", store="sums"), encoder=enc)
    shards = [tmp_path / f"s{i}" for i in range(3)]
    for i, out in enumerate(shards):
        build_index(cfg(out, (i, 3), store="sums"), encoder=enc)
    _one_line_error([scale["shards"][0], *shards[1:]], tmp_path / "mixed", r"--store")
    ref = Searcher.open(tmp_path / "ref", encoder=enc)
    Q = ref.encode_queries(QUERIES)
    ref_ids = [p.docid for p in ref.index.passages]
    for layout in ("sharded", "single"):
        path = merge_shards(shards, tmp_path / layout, layout=layout).path
        for block_rows in (None, 3):
            s = Searcher.open(path, encoder=enc, block_rows=block_rows)
            assert s.index.store == "sums"
            ids = [p.docid for p in s.index.passages]
            for spec in (s.spec(), s.spec(alpha=0.9, fusion="sum"), s.spec(alpha=0.0)):
                for x, y in zip(run_map(*s.search_vectors(Q, 5, spec), ids), run_map(*ref.search_vectors(Q, 5, spec), ref_ids)):
                    assert_same_ranking(x, y)
            r, r_ref = s.search(QUERIES[1], k=4, alpha=0.9), ref.search(QUERIES[1], k=4, alpha=0.9)
            assert_same_ranking({h.docid: h.score for h in r.augmented}, {h.docid: h.score for h in r_ref.augmented})


def test_hand_made_index_of_shards_with_shared_docids_is_refused(merged, tmp_path):
    """Merge refuses shards that share docids; a hand-edited manifest is caught when
    docids are first mapped (opening parses no passage), before any run is written."""
    from xqg_tui.errors import IndexError_

    root = tmp_path / "dup"
    shutil.copytree(merged["sharded"].path, root, symlinks=True)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    first = manifest["shards"][0]
    shutil.copytree(root / first["path"], root / "shard-copy")
    manifest["shards"][1] = {**first, "path": "shard-copy"}
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    idx = open_any(root)
    with pytest.raises(IndexError_, match="same docid appears in more than one shard"):
        idx.docids
    manifest["shards"][1] = first
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexError_, match="listed more than once"):
        open_any(root)
