"""The engine end to end on tiny models: build, resume, rebuild without models,
fusion, search, retrieve, and the CLI's JSON contract."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xqg_tui.errors import IndexError_, XQGError
from xqg_tui.index.builder import BuildConfig, build_index
from xqg_tui.index.fusion import FusionSpec, augmented_matrix, language_aggregate, language_scores
from xqg_tui.index.store import open_index
from xqg_tui.io.corpus import write_corpus_jsonl
from xqg_tui.search import Searcher
from xqg_tui.types import Query


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory, tiny_corpus) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    write_corpus_jsonl(path, tiny_corpus[:12])
    return path


def _config(corpus: Path, out: Path, enc: Path, gen: Path | None, **kw) -> BuildConfig:
    base = dict(
        corpus=corpus,
        out=out,
        encoder=str(enc),
        generator=str(gen) if gen else "none",
        langs=["ar", "ja"],
        queries_per_lang=2,
        chunk_size=4,
        max_new_tokens=6,
        seed=7,
    )
    base.update(kw)
    return BuildConfig(**base)


class Counting:
    """Wraps a model, counts calls, and can fail after a number of calls (a crash)."""

    def __init__(self, inner, fail_after: int | None = None) -> None:
        self.inner = inner
        self.fail_after = fail_after
        self.n = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _tick(self):
        if self.fail_after is not None and self.n >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.n += 1

    def encode_passages(self, *a, **k):
        self._tick()
        return self.inner.encode_passages(*a, **k)

    def encode_queries(self, *a, **k):
        self._tick()
        return self.inner.encode_queries(*a, **k)

    def generate(self, *a, **k):
        self._tick()
        return self.inner.generate(*a, **k)


@pytest.fixture(scope="module")
def models(tiny_encoder_dir, tiny_generator_dir):
    from xqg_tui.models.encoder import Encoder
    from xqg_tui.models.generator import QueryGenerator

    return (
        Encoder.load(str(tiny_encoder_dir)),
        QueryGenerator.load(str(tiny_generator_dir), max_new_tokens=6),
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory, corpus_file, tiny_encoder_dir, tiny_generator_dir, models) -> Path:
    out = tmp_path_factory.mktemp("idx") / "index"
    enc, gen = models
    build_index(_config(corpus_file, out, tiny_encoder_dir, tiny_generator_dir), encoder=enc, generator=gen)
    return out


def _same_index(a: Path, b: Path) -> None:
    ia, ib = open_index(a), open_index(b)
    assert np.array_equal(np.asarray(ia.passage_vectors), np.asarray(ib.passage_vectors))
    assert ia.langs == ib.langs
    for lang in ia.langs:
        assert np.array_equal(np.asarray(ia.query_vectors[lang]), np.asarray(ib.query_vectors[lang]))
        assert np.array_equal(ia.query_counts[lang], ib.query_counts[lang])
    assert [ia.generated(i) for i in range(ia.size)] == [ib.generated(i) for i in range(ib.size)]


def test_build_layout_and_manifest(built: Path):
    idx = open_index(built)
    assert idx.size == 12
    assert idx.langs == ["ar", "ja"]
    assert idx.query_vectors["ar"].shape[:2] == (12, 2)
    m = idx.manifest
    assert m["counts"]["passages"] == 12
    assert m["generation"]["source"] == "model"
    assert m["generation"]["queries_per_lang"] == 2
    assert not (built / "work").exists(), "work files are removed once the index is complete"
    for lang in idx.langs:
        assert all(len(idx.generated(i)[lang]) == int(idx.query_counts[lang][i]) for i in range(idx.size))


def test_killed_build_resumes_identically_without_repeating_work(tmp_path, corpus_file, tiny_encoder_dir, tiny_generator_dir, models, built):
    enc, gen = models
    out = tmp_path / "index"
    cfg = _config(corpus_file, out, tiny_encoder_dir, tiny_generator_dir)
    # 3 passage chunks + 6 generation calls + 6 query-encoding calls in all.
    crashing_gen = Counting(gen, fail_after=2)
    with pytest.raises(RuntimeError):
        build_index(cfg, encoder=Counting(enc), generator=crashing_gen)
    assert not (out / "manifest.json").exists(), "a half-built index is never marked complete"
    with pytest.raises(IndexError_, match="incomplete"):
        open_index(out)
    enc2, gen2 = Counting(enc), Counting(gen)
    build_index(cfg, encoder=enc2, generator=gen2)
    assert gen2.n == 6 - 2, "generation calls already saved are not repeated"
    assert enc2.n == 6, "passage chunks were saved before the crash: only query encoding runs"
    _same_index(out, built)


def test_rebuild_with_other_alpha_or_langs_runs_no_model(tmp_path, corpus_file, tiny_encoder_dir, tiny_generator_dir, built):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(built, out)

    class Forbidden:
        def __getattr__(self, name):
            raise AssertionError(f"model used: {name}")

    cfg = _config(corpus_file, out, tiny_encoder_dir, tiny_generator_dir, langs=["ja"], alpha=0.4, fusion="mean")
    # Passing objects that explode on any use proves no model call happens.
    res = build_index(cfg, encoder=Forbidden(), generator=Forbidden())
    assert res.model_calls == {"encoder": 0, "generator": 0}
    idx = open_index(out)
    assert idx.search_defaults == {"alpha": 0.4, "fusion": "mean", "langs": ["ja"]}
    assert set(idx.langs) == {"ar", "ja"}, "already generated languages are kept"


def test_fusion_formula_by_hand():
    P = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    # passage 0 has two ar queries, passage 1 one.
    Q = np.array([[[1.0, 1.0], [3.0, 1.0]], [[0.0, 2.0], [0.0, 0.0]]], dtype=np.float32)
    counts = np.array([2, 1])
    agg_sum = language_aggregate(Q, counts, None, "sum")
    np.testing.assert_allclose(agg_sum, [[4.0, 2.0], [0.0, 2.0]])
    agg_mean = language_aggregate(Q, counts, None, "mean")
    np.testing.assert_allclose(agg_mean, [[2.0, 1.0], [0.0, 2.0]])
    agg_n1 = language_aggregate(Q, counts, 1, "sum")
    np.testing.assert_allclose(agg_n1, [[1.0, 1.0], [0.0, 2.0]])
    spec = FusionSpec(alpha=0.01, fusion="sum", langs=("ar",))
    M = augmented_matrix(P, {"ar": agg_sum}, spec)
    # (1 - 0.01) * p + 0.01 * sum(q): row 0 = 0.99*[1,0] + 0.01*[4,2]
    np.testing.assert_allclose(M, [[0.99 + 0.04, 0.02], [0.0, 0.99 + 0.02]], rtol=1e-6)
    spec_w = FusionSpec(alpha=0.5, fusion="mean", langs=("ar",), weights=(("ar", 2.0),))
    np.testing.assert_allclose(augmented_matrix(P, {"ar": agg_mean}, spec_w), [[0.5 + 2.0, 1.0], [0.0, 0.5 + 2.0]])


def test_search_plain_vs_augmented_and_rerank(built, models):
    enc, _ = models
    s = Searcher.open(built, encoder=enc)
    r = s.search("東京 大学 いつ 設立", k=5, alpha=0.9)
    assert r.lang == "ja" and r.detected
    assert len(r.plain) == 5 and len(r.augmented) == 5
    assert [h.rank for h in r.augmented] == [1, 2, 3, 4, 5]
    # Scores agree with the fused matrix computed directly.
    M = s.fused_matrix(r.spec)
    qv = s.query_state("東京 大学 いつ 設立").vector
    for h in r.augmented:
        row = s.index.docid_index[h.docid]
        assert h.score == pytest.approx(float(M[row] @ qv), rel=1e-4, abs=1e-4)
        assert h.matched and h.matched[0].score >= h.matched[-1].score
        assert set(h.lang_contributions) == {"ar", "ja"}
    # Plain ranking equals alpha 0.
    r0 = s.search("東京 大学 いつ 設立", k=5, augment=False)
    assert [h.docid for h in r0.hits] == [h.docid for h in r.plain]
    # Re-ranking runs no model.
    calls = enc.calls
    state = s.query_state("東京 大学 いつ 設立")
    s.rerank(state, 5, s.spec(alpha=0.1, langs=["ar"]))
    assert enc.calls == calls
    # rank_change: the same passage's rank in the other ranking.
    plain_rank = {h.docid: h.rank for h in s.rerank(state, 12, s.spec(alpha=0.9)).plain}
    for h in r.augmented:
        assert h.other_rank == plain_rank[h.docid]


def test_search_rejects_empty_and_unknown_lang(built, models):
    enc, _ = models
    s = Searcher.open(built, encoder=enc)
    with pytest.raises(XQGError, match="empty"):
        s.search("   ")
    with pytest.raises(XQGError, match="no generated queries in te"):
        s.search("x", langs=["te"])
    long = "é" * 10_000 + " 🙂 مرحبا"
    assert len(s.search(long, k=3).hits) == 3


def test_retrieve_matches_search(built, models):
    enc, _ = models
    s = Searcher.open(built, encoder=enc)
    qs = [Query("q1", "Tokyo capital Japan", "ja"), Query("q2", "Helsinki Finland", "fi")]
    run = s.retrieve(qs, k=3, spec=s.spec(alpha=0.5))
    r = s.search("Tokyo capital Japan", k=3, alpha=0.5)
    # The batch path scores against the fused matrix, the interactive path sums
    # score parts: equal up to float32 rounding, so near-ties may swap order.
    batch_scores = [sc for _, sc in run["q1"]]
    inter_scores = [h.score for h in r.augmented]
    assert np.allclose(batch_scores, inter_scores, atol=1e-4)
    for (d, sc), h in zip(run["q1"], r.augmented):
        assert d == h.docid or abs(sc - h.score) < 1e-4
    full = {h.docid: h.score for h in s.search("Tokyo capital Japan", k=12, alpha=0.5).augmented}
    for d, sc in run["q1"]:
        assert abs(full[d] - sc) < 1e-4


def test_import_generated_with_unequal_counts_warns(tmp_path, corpus_file, tiny_encoder_dir, tiny_corpus, models):
    enc, _ = models
    rows = [
        {"docid": p.docid, "generated_queries": {"ru": ["вопрос"] * (1 + i % 3), "ko": ["질문"]}}
        for i, p in enumerate(tiny_corpus[:12])
    ]
    gen_file = tmp_path / "gen.jsonl"
    gen_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    events = []
    res = build_index(
        _config(corpus_file, tmp_path / "imp", tiny_encoder_dir, None, langs=None, import_generated=gen_file, fusion="sum"),
        encoder=enc,
        progress=events.append,
    )
    assert sorted(res.langs) == ["ko", "ru"]
    assert any(e.level == "warning" and "sum" in e.message for e in events)
    idx = open_index(tmp_path / "imp")
    assert list(idx.query_counts["ru"][:4]) == [1, 2, 3, 1]
    assert idx.generated(1)["ru"] == ["вопрос", "вопрос"]


def test_unknown_docid_in_import_is_a_clear_error(tmp_path, corpus_file, tiny_encoder_dir, models):
    enc, _ = models
    gen_file = tmp_path / "gen.jsonl"
    gen_file.write_text(json.dumps({"docid": "nope", "generated_queries": {"ar": ["x"]}}) + "\n", encoding="utf-8")
    with pytest.raises(XQGError) as e:
        build_index(_config(corpus_file, tmp_path / "x", tiny_encoder_dir, None, import_generated=gen_file), encoder=enc)
    assert "gen.jsonl:1" in str(e.value) and "nope" in str(e.value)
    assert not (tmp_path / "x" / "manifest.json").exists()


def test_cli_contract(built, tmp_path, capsys, tiny_corpus):
    from xqg_tui.cli import main

    assert main(["search", "--index", str(built), "--k", "3", "--json", "Tokyo"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["hits"]) == 3
    assert {"docid", "rank", "score", "title", "text", "matched_queries"} <= set(out["hits"][0])

    queries = tmp_path / "q.jsonl"
    rows = [
        {"id": "q1", "question": "Tokyo capital", "answers": ["Japan"], "lang": "ja"},
        {"id": "q2", "question": "Moscow chronicles", "answers": ["1147"], "lang": " ru"},
        {"id": "q3", "question": "Is Cairo big?", "answers": ["yes"], "lang": "ar"},
    ]
    queries.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    qrels = tmp_path / "qrels.trec"
    ids = {p.title: p.docid for p in tiny_corpus}
    qrels.write_text(f"q1 0 {ids['Tokyo']} 1\nq2 0 {ids['Moscow']} 1\nq3 0 {ids['Cairo']} 1\n")
    run_a, run_b = tmp_path / "a.trec", tmp_path / "b.trec"
    assert main(["retrieve", "--index", str(built), "--queries", str(queries), "--out", str(run_a), "--k", "10", "--quiet"]) == 0
    assert main(["retrieve", "--index", str(built), "--queries", str(queries), "--out", str(run_b), "--no-augment", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", "--run", str(run_a), "--queries", str(queries), "--qrels", str(qrels), "--index", str(built), "--compare", str(run_b), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"per_language", "macro", "compare"}
    ja = res["per_language"]["ja"]
    for key in ("R@2kt", "R@5kt", "Recall@1", "Recall@5", "Recall@10", "MRR@10", "nDCG@10", "n"):
        assert key in ja
    # 12 passages of a few words each fit in 2,000 tokens: every answer is found.
    assert ja["R@2kt"] == 1.0 and res["per_language"]["ru"]["R@5kt"] == 1.0
    assert "ar" not in res["per_language"] or "R@2kt" not in res["per_language"]["ar"], "yes/no answers are skipped"


def test_cli_user_error_is_one_line(tmp_path, capsys):
    from xqg_tui.cli import main

    code = main(["search", "--index", str(tmp_path / "missing"), "hello"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("xqg: error:") and err.count("\n") == 1


@pytest.mark.parametrize("fusion", ["sum", "mean"])
@pytest.mark.parametrize("n", [None, 0, 1, 2, 7])
def test_language_scores_equal_the_aggregate_scored(fusion, n):
    """The one-pass scores the app uses on big indexes follow the aggregate's rules:
    first min(n, count) queries, zero rows past a count, mean over what is used."""
    rng = np.random.default_rng(3)
    counts = np.array([3, 0, 1, 3, 2])
    V = rng.standard_normal((5, 3, 8)).astype(np.float32)
    V[np.arange(3)[None, :] >= counts[:, None]] = 0.0  # stored layout: zeros past the count
    q = rng.standard_normal(8).astype(np.float32)
    want = language_aggregate(V, counts, n, fusion) @ q
    got = language_scores(V, counts, n, fusion, q)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert got[1] == 0.0
