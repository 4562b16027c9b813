"""``--store sums``: per-language sums and counts instead of every query vector. Same
mean/sum fusion scores, ~n times smaller, clear one-line errors for what it gives up."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Static

from tui_fixtures import JA_QUERY, plain_text, run_async, settle, tui_index  # noqa: F401
from xqg_tui.errors import XQGError
from xqg_tui.index.builder import BuildConfig, build_index
from xqg_tui.index.store import open_index
from xqg_tui.io.corpus import write_corpus_jsonl
from xqg_tui.search import Searcher

N = 5


@pytest.fixture(scope="module")
def models(tiny_encoder_dir, tiny_generator_dir):
    from xqg_tui.models.encoder import Encoder
    from xqg_tui.models.generator import QueryGenerator

    return Encoder.load(str(tiny_encoder_dir)), QueryGenerator.load(str(tiny_generator_dir), max_new_tokens=6)


class Forbidden:
    def __getattr__(self, name):
        raise AssertionError(f"model used: {name}")


@pytest.fixture(scope="module")
def pair(tmp_path_factory, tiny_corpus, tiny_encoder_dir, tiny_generator_dir, models) -> tuple[Path, Path]:
    """The same build stored full and as sums."""
    enc, gen = models
    root = tmp_path_factory.mktemp("sums")
    corpus = root / "corpus.jsonl"
    write_corpus_jsonl(corpus, tiny_corpus[:12])
    cfg = dict(corpus=corpus, encoder=str(tiny_encoder_dir), generator=str(tiny_generator_dir), langs=["ar", "ja"],
               queries_per_lang=N, chunk_size=4, max_new_tokens=6, seed=5)
    build_index(BuildConfig(out=root / "full", **cfg), encoder=enc, generator=gen)
    build_index(BuildConfig(out=root / "sums", store="sums", **cfg), encoder=enc, generator=gen)
    return root / "full", root / "sums"


@pytest.mark.parametrize("fusion", ["mean", "sum"])
def test_same_scores_as_the_full_store(pair, models, fusion):
    enc, _ = models
    full, sums = (Searcher.open(p, encoder=enc) for p in pair)
    assert sums.index.store == "sums" and sums.index.manifest["store"] == "sums" and full.index.store == "full"
    for text in ("東京 大学 いつ 設立", "Helsinki capital"):
        a = full.search(text, k=12, alpha=0.5, fusion=fusion)
        b = sums.search(text, k=12, alpha=0.5, fusion=fusion)
        assert np.allclose([h.score for h in a.augmented], [h.score for h in b.augmented], atol=1e-5)
        assert [h.docid for h in a.augmented] == [h.docid for h in b.augmented]
    spec = full.spec(alpha=0.5, fusion=fusion)
    np.testing.assert_allclose(full.fused_matrix(spec), sums.fused_matrix(spec), atol=1e-6)
    # The stored default fused matrix agrees too.
    fa, fb = (np.load(p / open_index(p).manifest["data_dir"] / "fused_vectors.npy", allow_pickle=False) for p in pair)
    np.testing.assert_allclose(fa, fb, atol=1e-6)


def test_about_n_times_smaller(pair):
    full, sums = (open_index(p) for p in pair)
    assert int(max(full.query_counts["ar"])) == N
    for lang in ("ar", "ja"):
        assert full.query_vectors[lang].nbytes == N * sums.query_sums[lang].nbytes

    def stored(idx, folder: str) -> int:
        return sum(rec["bytes"] for rel, rec in idx.manifest["files"].items() if f"/{folder}/" in rel)

    assert stored(full, "query_vectors") / stored(sums, "query_sums") > 4.0  # headers aside, 5x
    assert [sums.generated(i) for i in range(sums.size)] == [full.generated(i) for i in range(full.size)]


def test_given_up_features_are_clear_errors(pair, models, capsys):
    enc, _ = models
    s = Searcher.open(pair[1], encoder=enc)
    with pytest.raises(XQGError, match=r"cannot use 2 queries per language.*--store sums") as e:
        s.search("Tokyo", n=2)
    assert "\n" not in e.value.one_line() and "--store full" in e.value.one_line()
    assert len(s.search("Tokyo", n=N, k=3).hits) == 3, "n at the stored count is all the queries: fine"
    assert len(s.search("Tokyo", n=0, k=3).hits) == 3
    with pytest.raises(XQGError, match="per-language sums"):
        s.index.query_vectors["ar"]
    r = s.search("Tokyo", k=3)
    assert all(h.matched == [] for h in r.hits), "no per-query vectors to score"
    assert s.matched_queries(0, r.hits and s.query_state("Tokyo").vector, ["ar"]) == []
    from xqg_tui.cli import main

    assert main(["search", "--index", str(pair[1]), "-n", "1", "Tokyo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xqg: error:") and err.count("\n") == 1 and "--store sums" in err


def test_rebuild_other_alpha_and_full_to_sums_run_no_model(pair, tmp_path, tiny_encoder_dir, tiny_generator_dir):
    full, sums = pair
    m = open_index(sums).manifest
    cfg = dict(corpus=Path(m["inputs"]["corpus"]["path"]), encoder=str(tiny_encoder_dir), generator=str(tiny_generator_dir),
               langs=["ar", "ja"], queries_per_lang=N, chunk_size=4, max_new_tokens=6, seed=5)
    a = tmp_path / "a"
    shutil.copytree(sums, a)
    res = build_index(BuildConfig(out=a, store="sums", alpha=0.3, fusion="sum", **cfg), encoder=Forbidden(), generator=Forbidden())
    assert res.model_calls == {"encoder": 0, "generator": 0}
    assert open_index(a).search_defaults["alpha"] == 0.3
    b = tmp_path / "b"
    shutil.copytree(full, b)
    build_index(BuildConfig(out=b, store="sums", **cfg), encoder=Forbidden(), generator=Forbidden())
    ib, isums = open_index(b), open_index(sums)
    assert ib.store == "sums"
    for lang in ("ar", "ja"):
        np.testing.assert_allclose(ib.query_sums[lang], isums.query_sums[lang], atol=1e-6)


@run_async
async def test_tui_inspector_works_on_a_sums_index(tui_index, tmp_path):
    from xqg_tui.tui.app import create_app
    from xqg_tui.tui.screens.inspector import InspectorScreen

    out = tmp_path / "sums"
    shutil.copytree(tui_index, out)
    m = open_index(out).manifest
    build_index(BuildConfig(corpus=Path(m["inputs"]["corpus"]["path"]), out=out, encoder=m["encoder"]["model_id"],
                            generator=m["generation"]["spec"], langs=m["generation"]["langs"], queries_per_lang=3,
                            max_new_tokens=8, device="cpu", store="sums"), encoder=Forbidden(), generator=Forbidden())
    s = Searcher.open(out)
    s.load_encoder("cpu")
    app = create_app(searcher=s, alpha=0.9, show_timings=False)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press(*JA_QUERY, "enter")
        await settle(pilot, app)
        await pilot.press("i")
        await pilot.pause()
        assert isinstance(app.screen, InspectorScreen)
        row = s.index.docid_index[app.screen.hit.docid]
        text = plain_text(app.screen.query_one("#gen-ja", Static))
        assert "--store sums" in text
        for q in s.index.generated(row)["ja"]:
            assert q in text


@pytest.mark.parametrize("store", ["full", "sums"])
def test_fuse_in_row_blocks_equals_the_whole_matrix(pair, models, tmp_path, monkeypatch, store,
                                                    tiny_encoder_dir, tiny_generator_dir):
    """The build fuses a few rows at a time (flat memory whatever the corpus size);
    the file holds the same bytes as fusing the whole matrix at once."""
    from xqg_tui.index import builder
    from xqg_tui.index.fusion import FusionSpec

    enc, gen = models
    dim = open_index(pair[0]).dim
    monkeypatch.setattr(builder, "FUSE_BLOCK_BYTES", 5 * dim * 4)  # 5 rows a block: 3 blocks for 12 rows
    out = tmp_path / store
    build_index(BuildConfig(out=out, store=store, corpus=pair[0].parent / "corpus.jsonl", encoder=str(tiny_encoder_dir),
                            generator=str(tiny_generator_dir), langs=["ar", "ja"], queries_per_lang=N, chunk_size=4,
                            max_new_tokens=6, seed=5), encoder=enc, generator=gen)
    idx = open_index(out)
    d = idx.search_defaults
    spec = FusionSpec(alpha=d["alpha"], fusion=d["fusion"], langs=tuple(d["langs"]))
    whole = Searcher.open(out, encoder=enc).fused_matrix(spec).astype(idx.manifest["dtype"])
    stored = np.load(out / idx.manifest["data_dir"] / "fused_vectors.npy", allow_pickle=False)
    assert stored.shape == (12, dim) and not spec.is_plain
    assert np.array_equal(stored, whole)
