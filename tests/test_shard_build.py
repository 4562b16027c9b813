"""``xqg build --shard I/N``: every passage in exactly one shard, each shard a complete,
searchable index whose manifest says what a merge checks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xqg_tui.errors import XQGError
from xqg_tui.index.builder import BuildConfig, build_index
from xqg_tui.index.shards import shard_of
from xqg_tui.index.store import open_index
from xqg_tui.io.corpus import write_corpus_jsonl
from xqg_tui.search import Searcher


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory, tiny_corpus) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    write_corpus_jsonl(path, tiny_corpus)
    return path


@pytest.fixture(scope="module")
def models(tiny_encoder_dir, tiny_generator_dir):
    from xqg_tui.models.encoder import Encoder
    from xqg_tui.models.generator import QueryGenerator

    return Encoder.load(str(tiny_encoder_dir)), QueryGenerator.load(str(tiny_generator_dir), max_new_tokens=6)


def _config(corpus: Path, out: Path, enc: Path, gen: Path, **kw) -> BuildConfig:
    base = dict(corpus=corpus, out=out, encoder=str(enc), generator=str(gen), langs=["ja"], queries_per_lang=2,
                chunk_size=4, max_new_tokens=6, seed=3)
    base.update(kw)
    return BuildConfig(**base)


@pytest.fixture(scope="module")
def shards(tmp_path_factory, corpus_file, tiny_encoder_dir, tiny_generator_dir, models) -> list[Path]:
    from xqg_tui.cli import main

    enc, gen = models
    root = tmp_path_factory.mktemp("shards")
    # Shard 0 through the CLI (the flag), shard 1 through the library.
    assert main(["build", "--corpus", str(corpus_file), "--out", str(root / "s0"), "--encoder", str(tiny_encoder_dir),
                 "--generator", str(tiny_generator_dir), "--langs", "ja", "--queries-per-lang", "2", "--chunk-size", "4",
                 "--seed", "3", "--shard", "0/2", "--quiet"]) == 0
    build_index(_config(corpus_file, root / "s1", tiny_encoder_dir, tiny_generator_dir, shard="1/2"), encoder=enc, generator=gen)
    return [root / "s0", root / "s1"]


def test_shards_cover_the_corpus_exactly_once(shards, tiny_corpus, corpus_file):
    seen: list[str] = []
    for i, path in enumerate(shards):
        idx = open_index(path)
        docids = [p.docid for p in idx.passages]
        assert docids and all(shard_of(d, 2) == i for d in docids)
        m = idx.manifest
        assert m["shard"]["index"] == i and m["shard"]["count"] == 2
        assert m["shard"]["corpus_passages"] == len(tiny_corpus)
        assert m["shard"]["corpus_sha256"] == m["inputs"]["corpus"]["sha256"]
        assert m["counts"]["passages"] == len(docids)
        seen += docids
    assert sorted(seen) == sorted(p.docid for p in tiny_corpus), "every passage once, none twice"


def test_each_shard_is_searchable(shards, models):
    enc, _ = models
    for path in shards:
        s = Searcher.open(path, encoder=enc)
        r = s.search("capital city", k=3, alpha=0.5)
        assert len(r.augmented) == 3
        assert {h.docid for h in r.augmented} <= {p.docid for p in s.index.passages}


def test_shard_queries_match_the_whole_corpus_build(shards, tmp_path, corpus_file, tiny_encoder_dir, tiny_generator_dir, models):
    """Generation is seeded per passage, so a shard generates what the whole build does
    (shard 1: built with the same max_new_tokens as here; the CLI's default differs)."""
    enc, gen = models
    full = tmp_path / "full"
    build_index(_config(corpus_file, full, tiny_encoder_dir, tiny_generator_dir), encoder=enc, generator=gen)
    whole = open_index(full)
    for path in shards[1:]:
        idx = open_index(path)
        for i, p in enumerate(idx.passages):
            assert idx.generated(i) == whole.generated_for(p.docid)
            row = whole.docid_index[p.docid]
            np.testing.assert_allclose(idx.passage_vectors[i], whole.passage_vectors[row], atol=1e-5)


def test_shard_of_an_import_skips_other_shards_rows_but_checks_docids(tmp_path, corpus_file, tiny_corpus, tiny_encoder_dir, models):
    enc, _ = models
    rows = [{"docid": p.docid, "generated_queries": {"ko": ["질문"]}} for p in tiny_corpus]
    gen_file = tmp_path / "gen.jsonl"
    gen_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    cfg = BuildConfig(corpus=corpus_file, out=tmp_path / "s", encoder=str(tiny_encoder_dir), import_generated=gen_file,
                      chunk_size=4, shard="1/2")
    build_index(cfg, encoder=enc)
    idx = open_index(tmp_path / "s")
    assert all(int(c) == 1 for c in idx.query_counts["ko"])
    gen_file.write_text(gen_file.read_text(encoding="utf-8") + json.dumps({"docid": "zz", "generated_queries": {"ko": ["x"]}}) + "\n", encoding="utf-8")
    with pytest.raises(XQGError, match=rf"gen.jsonl:{len(rows) + 1}: .*'zz' is not in the corpus"):
        build_index(BuildConfig(**{**cfg.__dict__, "out": tmp_path / "t"}), encoder=enc)
    assert not (tmp_path / "t" / "manifest.json").exists()


def test_bad_shard_and_empty_shard_are_one_line_errors(tmp_path, corpus_file, tiny_encoder_dir, capsys):
    from xqg_tui.cli import main

    for bad in ("2/2", "x", "1/0"):
        assert main(["build", "--corpus", str(corpus_file), "--out", str(tmp_path / "x"), "--shard", bad, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("xqg: error: --shard") and err.count("\n") == 1
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"docid": "d01", "text": "only one"}) + "\n", encoding="utf-8")
    empty = next(i for i in range(4) if shard_of("d01", 4) != i)
    assert main(["build", "--corpus", str(one), "--out", str(tmp_path / "y"), "--encoder", str(tiny_encoder_dir),
                 "--shard", f"{empty}/4", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "has no passages" in err and err.count("\n") == 1
    assert not (tmp_path / "y" / "manifest.json").exists()
