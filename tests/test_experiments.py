"""The scaling experiments on a tiny index: settings, reuse of stored vectors,
numbers against an independent computation, significance marks, renderings, CLI,
and the data converters (XQuAD split by article, XOR-TyDi translations)."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from xqg_tui.cli import main
from xqg_tui.evaluation.report import evaluate
from xqg_tui.experiments import Inputs, get_experiment, list_experiments, run_experiment
from xqg_tui.experiments.core import load_queries
from xqg_tui.experiments.languages import random_subsets
from xqg_tui.index.builder import BuildConfig, build_index
from xqg_tui.io.corpus import write_corpus_jsonl
from xqg_tui.io.qrels import write_qrels
from xqg_tui.io.queries import write_queries_jsonl
from xqg_tui.search import Searcher
from xqg_tui.types import Query

from conftest import _WORDS

GEN_LANGS = ["ar", "ja", "ru"]


def _sentence(rng: random.Random, lang: str) -> str:
    sep = "" if lang == "ja" else " "
    return sep.join(rng.choice(_WORDS[lang]) for _ in range(6))


@pytest.fixture(scope="module")
def collection(tmp_path_factory, tiny_corpus, tiny_e5_encoder_dir):
    """A 20-passage index with imported generated queries in ar/ja/ru (ja: unequal
    counts). The ar and ru test queries of passage d are copies of one of d's generated
    queries, so fusing a query's own language must lift recall (and significantly).
    The fi queries have no generated queries of their own."""
    root = tmp_path_factory.mktemp("exp")
    rng = random.Random(3)
    corpus = root / "corpus.jsonl"
    write_corpus_jsonl(corpus, tiny_corpus)
    gen_rows, queries = [], {l: [] for l in ("ar", "ru", "fi")}
    qrels = {}
    for i, p in enumerate(tiny_corpus):
        gq = {"ar": [_sentence(rng, "ar")], "ja": [_sentence(rng, "ja") for _ in range(1 + i % 2)], "ru": [_sentence(rng, "ru"), _sentence(rng, "ru")]}
        gen_rows.append({"docid": p.docid, "generated_queries": gq})
        qid = f"q{i:02d}"  # the same ids in every language, as XQuAD has
        answer = (p.title or "Telugu",)
        queries["ar"].append(Query(qid, gq["ar"][0], "ar", answer))
        queries["ru"].append(Query(qid, gq["ru"][1], "ru", answer))
        queries["fi"].append(Query(qid, _sentence(rng, "fi"), "fi", answer))
        qrels[qid] = {p.docid: 1}
    gen = root / "generated.jsonl"
    gen.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in gen_rows), encoding="utf-8")
    files = {}
    for lang, qs in queries.items():
        files[lang] = root / f"queries.{lang}.jsonl"
        write_queries_jsonl(files[lang], qs)
    qrels_path = root / "qrels.trec"
    write_qrels(qrels_path, qrels)
    index = root / "index"
    build_index(BuildConfig(corpus=corpus, out=index, encoder=str(tiny_e5_encoder_dir), generator="none",
                            import_generated=gen, langs=GEN_LANGS, chunk_size=8))
    return {"root": root, "index": index, "queries": files, "qrels": qrels_path, "generated": gen, "corpus": corpus}


@pytest.fixture(scope="module")
def encoder(tiny_e5_encoder_dir):
    from xqg_tui.models.encoder import Encoder

    return Encoder.load(str(tiny_e5_encoder_dir), device="cpu")


def _inputs(collection, encoder, langs=("ar", "ru", "fi"), **kw) -> Inputs:
    return Inputs.make(collection["index"], [str(collection["queries"][l]) for l in langs], collection["qrels"], encoder=encoder, **kw)


@pytest.fixture(scope="module")
def languages_run(collection, encoder, tmp_path_factory):
    out = tmp_path_factory.mktemp("res") / "languages"
    before = encoder.calls
    result, paths = run_experiment("languages", _inputs(collection, encoder, alpha=0.5, fusion="mean", seed=1), out=out, subsets=2)
    return result, paths, encoder.calls - before


def test_registry_lists_every_experiment():
    assert set(list_experiments()) >= {"languages", "queries-per-lang", "alpha", "finetune"}
    assert get_experiment("alpha").name == "alpha"


def test_shared_query_ids_are_namespaced(collection):
    qs, original = load_queries([(None, collection["queries"]["ar"]), (None, collection["queries"]["ru"])])
    assert len({q.qid for q in qs}) == 40
    assert original["q03@ru"] == "q03"


def test_languages_settings_and_single_query_encoding(languages_run):
    result, _, calls = languages_run
    keys = [r.setting.key for r in result.results]
    assert keys[0] == "none" and "own" in keys
    assert [k for k in keys if k.startswith("order:")] == ["order:1", "order:2", "order:3"]
    assert [k for k in keys if k.startswith("random:")] == ["random:1", "random:2", "random:3"]
    # 60 queries, batch 32: the queries were encoded once (2 forward passes) for all 11 settings.
    assert calls == 2
    # fi has no generated queries of its own: no own-language value.
    assert set(result.by_key("own").report.per_language) == {"ar", "ru"}


def test_languages_values_match_an_independent_retrieval(languages_run, collection, encoder):
    result, _, _ = languages_run
    s = Searcher.open(collection["index"], encoder=encoder)
    qs, original = load_queries([(None, collection["queries"][l]) for l in ("ar", "ru", "fi")])
    qrels = {q.qid: {f"d{int(original[q.qid][1:]) + 1:02d}": 1} for q in qs}
    passage_text = {p.docid: p.text for p in s.index.passages}
    for key, langs in (("none", None), ("order:2", ["ar", "ja"])):
        spec = s.spec(alpha=0.0 if langs is None else 0.5, fusion="mean", langs=langs or GEN_LANGS)
        report = evaluate(s.retrieve(qs, k=100, spec=spec), qs, qrels, passage_text)
        got = result.by_key(key).report
        for lang in ("ar", "ru", "fi"):
            for m in ("Recall@1", "MRR@10", "R@2kt"):
                assert got.per_language[lang][m] == pytest.approx(report.per_language[lang][m]), (key, lang, m)


def test_own_language_fusion_helps_significantly_and_is_marked(languages_run):
    result, paths, _ = languages_run
    base, own = result.by_key("none").report, result.by_key("own")
    assert own.report.per_language["ar"]["Recall@1"] > base.per_language["ar"]["Recall@1"] + 0.3
    entry = own.comparison.per_language["ar"]["Recall@1"]
    assert entry["significant"] and entry["p_value"] < 0.05
    md = paths["markdown"].read_text(encoding="utf-8")
    section = md.split("### Recall@1")[1]
    row = next(line for line in section.splitlines() if "| own language only |" in line)
    assert "*" in row.split("|")[3]  # the ar cell of the first metric table carrying Recall@1
    # own-first with one language is the own-language setting
    for lang in ("ar", "ru"):
        assert result.by_key("own-first:1").report.per_language[lang]["MRR@10"] == pytest.approx(own.report.per_language[lang]["MRR@10"])


def test_random_subsets_average_per_query(languages_run):
    result, _, _ = languages_run
    rnd = result.by_key("random:1")
    subsets = rnd.setting.params["subsets"]
    assert len(subsets) == 2 and all(len(s) == 1 for s in subsets)
    # with every language (one subset) random equals the fixed order
    full_r, full_o = result.by_key("random:3").report, result.by_key("order:3").report
    assert full_r.per_query["MRR@10"] == pytest.approx(full_o.per_query["MRR@10"])
    # seeded and deterministic, distinct subsets, all when few
    assert random_subsets(GEN_LANGS, 1, 2, random.Random(1)) == random_subsets(GEN_LANGS, 1, 2, random.Random(1))
    assert random_subsets(GEN_LANGS, 2, 10, random.Random(0)) == [("ar", "ja"), ("ar", "ru"), ("ja", "ru")]
    picks = random_subsets(list("abcdefg"), 3, 10, random.Random(5))
    assert len(picks) == 10 == len(set(picks))


def test_random_mean_equals_mean_of_its_subsets(collection, encoder, tmp_path):
    result, _ = run_experiment("languages", _inputs(collection, encoder, langs=("ar",), alpha=0.5, fusion="mean", seed=1),
                               out=None, subsets=3, series="random")
    rnd = result.by_key("random:1")
    per = []
    for sub in rnd.setting.params["subsets"]:
        r, _ = run_experiment("alpha", _inputs(collection, encoder, langs=("ar",)), alphas="0.5", fusions="mean", langs=",".join(sub))
        per.append(r.by_key("mean:0.5").report.per_query["MRR@10"])
    for qid, v in rnd.report.per_query["MRR@10"].items():
        assert v == pytest.approx(sum(p[qid] for p in per) / len(per))


def test_result_files(languages_run, collection):
    result, paths, _ = languages_run
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["experiment"] == "languages" and data["baseline"] == "none"
    prov = data["provenance"]
    assert prov["seed"] == 1 and "numpy" in prov["libraries"] and prov["index"]["encoder"]["weights_sha256"]
    shas = {Path(f["path"]).name: f["sha256"] for f in prov["data_files"]}
    from xqg_tui.experiments.provenance import sha256_file

    assert shas["queries.ar.jsonl"] == sha256_file(collection["queries"]["ar"])
    assert shas["qrels.trec"] == sha256_file(collection["qrels"])
    assert data["settings"]["alpha"] == 0.5 and data["settings"]["fusion"] == "mean"
    own = next(r for r in data["results"] if r["key"] == "own")
    assert own["vs_baseline"]["ar"]["Recall@1"]["significant"] is True
    assert own["variants"][0]["ar"] == {"alpha": 0.5, "fusion": "mean", "langs": ["ar"], "n": None}
    assert data["markdown"].startswith("## Generation languages")  # what the app's results viewer shows
    pq = json.loads(paths["per_query"].read_text(encoding="utf-8"))
    assert len(pq["qids"]) == 60 and all(len(v) == 60 for v in pq["settings"]["none"].values())
    assert data["per_query_file"]["sha256"] == sha256_file(paths["per_query"])
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Generation languages" in paths["terminal_plot"].read_text(encoding="utf-8")


def test_queries_per_lang(collection, encoder, tmp_path):
    result, paths = run_experiment("queries-per-lang", _inputs(collection, encoder, alpha=0.5, fusion="sum"), out=tmp_path)
    keys = [r.setting.key for r in result.results]
    assert keys == ["n:0", "n:1", "n:2"]  # ru stores two queries per passage
    alpha, _ = run_experiment("alpha", _inputs(collection, encoder), alphas="0.5", fusions="sum")
    assert result.by_key("n:2").report.per_query["MRR@10"] == pytest.approx(alpha.by_key("sum:0.5").report.per_query["MRR@10"])
    assert result.by_key("n:1").comparison is not None and result.by_key("n:0").comparison is None
    assert (tmp_path / "results.md").read_text(encoding="utf-8").count("n = ") >= 3


def test_alpha_sweep_both_fusions(collection, encoder, tmp_path):
    result, _ = run_experiment("alpha", _inputs(collection, encoder), out=tmp_path, alphas="0,0.1,0.9")
    keys = [r.setting.key for r in result.results]
    assert keys == ["alpha:0", "sum:0.1", "sum:0.9", "mean:0.1", "mean:0.9"]
    assert result.series == ["no xQG", "sum fusion", "mean fusion"]
    # ar test queries are copies of the passages' only ar query: large alpha lifts Recall@1
    assert result.by_key("mean:0.9").report.per_language["ar"]["Recall@1"] > result.by_key("alpha:0").report.per_language["ar"]["Recall@1"]
    note = " ".join(result.notes)
    assert "different numbers of generated queries" in note  # ja has 1 or 2 per passage


def test_cli_experiment(collection, tmp_path, capsys):
    out = tmp_path / "cli-alpha"
    rc = main(["experiment", "alpha", "--index", str(collection["index"]),
               "--queries", f"{collection['queries']['ar']},{collection['queries']['ru']}", "--qrels", str(collection["qrels"]),
               "--out", str(out), "--alphas", "0,0.3", "--fusions", "mean", "--no-png", "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0 and "| mean fusion | mean, alpha = 0.3 |" in printed and "macro" in printed
    assert (out / "result.json").exists() and not (out / "plot.png").exists()
    rc = main(["experiment", "languages", "--index", str(collection["index"]), "--queries", str(collection["queries"]["ar"]),
               "--qrels", str(collection["qrels"]), "--out", str(tmp_path / "x"), "--langs", "ko", "--json"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "ko" in err


def test_xquad_split_keeps_train_and_eval_apart(tmp_path):
    xq = tmp_path / "xq"
    xq.mkdir()
    rng = random.Random(0)

    def squad(lang: str) -> dict:
        data = []
        for a in range(6):
            paras = []
            for p in range(3):
                ctx = f"Article {a} paragraph {p} says fact{a}{p} and more."
                qas = [{"id": f"a{a}p{p}q{j}", "question": f"[{lang}] question {j} about {a}-{p}?",
                        "answers": [{"text": f"fact{a}{p}", "answer_start": ctx.index(f'fact{a}{p}')}]} for j in range(4)]
                paras.append({"context": ctx, "qas": qas})
            data.append({"title": f"T{a}", "paragraphs": paras})
        return {"version": "1.1", "data": data}

    for lang in ("en", "ar", "ru", "de"):
        (xq / f"xquad.{lang}.json").write_text(json.dumps(squad(lang)), encoding="utf-8")
    from xqg_tui.experiments.data import xquad_split
    from xqg_tui.io.queries import read_queries
    from xqg_tui.training.encoder import read_training_file

    out = tmp_path / "split"
    summary = xquad_split(xq, out, ["ar", "ru"], ["ar", "de"], seed=rng.randint(0, 9))
    train_art, eval_art = set(summary["articles"]["train"]), set(summary["articles"]["eval"])
    assert train_art and eval_art and not train_art & eval_art
    examples = read_training_file(out / "train.jsonl")
    assert len(examples) == 2 * len(train_art) * 3 * 4
    for e in examples:
        art = int(e.positives[0].docid.split("-")[1])
        assert art in train_art
        assert e.negatives and all(n.docid.split("-")[1] == e.positives[0].docid.split("-")[1] != "" and n.docid != e.positives[0].docid for n in e.negatives)
    gen = [json.loads(l) for l in (out / "generated.oracle.jsonl").read_text(encoding="utf-8").splitlines()]
    gen_texts = {t for row in gen for ts in row["generated_queries"].values() for t in ts}
    assert all(len(row["generated_queries"]["ar"]) == 2 for row in gen)
    for lang in ("ar", "ru"):
        test = read_queries(out / f"queries.test.{lang}.jsonl")
        ev = read_queries(out / f"queries.eval.{lang}.jsonl")
        assert len(test) == 6 * 3 * 2 and {q.qid for q in ev} < {q.qid for q in test}
        assert all(int(q.qid[1]) in eval_art for q in ev)
        # no test question, in any language, is an oracle "generated" query
        for q in test:
            j = q.qid[-1]
            assert j in "13"
            assert not any(f"question {j} about {q.qid[1]}-{q.qid[3]}?" in t for t in gen_texts)


def test_xor_translations(tmp_path):
    from xqg_tui.experiments.data import xor_translations
    from xqg_tui.training.encoder import read_training_file

    for lang in ("ar", "ja"):
        d = tmp_path / f"{lang}-en"
        d.mkdir()
        (d / f"{lang}.txt").write_text("".join(f"{lang} q{i}\n" for i in range(5)), encoding="utf-8")
        (d / "en.txt").write_text("".join(f"english q{i}\n" for i in range(5)), encoding="utf-8")
    s = xor_translations(tmp_path, tmp_path / "pairs.jsonl", ["ar", "ja"], per_lang=3, seed=0)
    ex = read_training_file(tmp_path / "pairs.jsonl")
    assert s["examples"] == 6 == len(ex) and s["per_lang"] == {"ar": 3, "ja": 3}
    for e in ex:
        lang, i = e.query.split(" q")
        assert e.positives[0].text == f"english q{i}" and not e.negatives
    (tmp_path / "ja-en" / "en.txt").write_text("one line\n", encoding="utf-8")
    from xqg_tui.errors import InputError

    with pytest.raises(InputError, match="line-aligned"):
        xor_translations(tmp_path, tmp_path / "p2.jsonl", ["ja"])


@pytest.mark.realdata
def test_xquad_split_real(tmp_path):
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xquad"
    if not root.exists():
        pytest.skip("no ../shared/data/xquad")
    from xqg_tui.experiments.data import xquad_split

    s = xquad_split(root, tmp_path, ["ar", "ru"], ["ar", "ru", "de"])
    assert len(s["articles"]["train"]) == len(s["articles"]["eval"]) == 24
    assert s["queries"]["test"]["ar"] + sum(1 for _ in open(tmp_path / "generated.oracle.jsonl")) > 0
    gen = "\n".join((tmp_path / "generated.oracle.jsonl").read_text(encoding="utf-8").splitlines())
    test_q = [json.loads(l)["question"] for l in open(tmp_path / "queries.test.ar.jsonl", encoding="utf-8")]
    assert not any(json.dumps(q, ensure_ascii=False) in gen for q in test_q)
    assert math.isclose(s["queries"]["test"]["ar"] / 1190, 0.43, abs_tol=0.05)


def test_show_reloads_a_saved_result(languages_run, tmp_path, capsys):
    import shutil

    from xqg_tui.experiments.render import load_result

    result, paths, _ = languages_run
    folder = tmp_path / "saved"
    shutil.copytree(paths["json"].parent, folder)
    loaded = load_result(folder)
    assert [r.setting.key for r in loaded.results] == [r.setting.key for r in result.results]
    own, own0 = loaded.by_key("own"), result.by_key("own")
    assert own.report.per_language == own0.report.per_language
    e, e0 = own.comparison.per_language["ar"]["Recall@1"], own0.comparison.per_language["ar"]["Recall@1"]
    assert e["significant"] == e0["significant"] and e["p_value"] == pytest.approx(e0["p_value"], rel=1e-3)
    before = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    (folder / "plot.png").unlink()
    assert main(["experiment", "show", str(folder), "--write"]) == 0
    out = capsys.readouterr().out
    assert "| own language only |" in out and (folder / "plot.png").exists()
    after = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    assert after["results"] == before["results"] and after["provenance"] == before["provenance"]
    assert main(["experiment", "show", str(tmp_path / "nothing")]) == 2
