"""R@kt tokeniser choice measured on real text (XQuAD: English paragraphs as
passages, ar/ru questions, English answers).

Run as a script to print the table quoted in docs/evaluation.md:

    .venv/bin/python tests/test_rkt_realdata.py
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
XQUAD = ROOT.parent / "shared" / "data" / "xquad"

if __name__ == "__main__":  # script use without installing the package
    sys.path.insert(0, str(ROOT))

from xqg_tui.evaluation import TOKENIZERS, official_word_tokenize, r_at_kt_per_query  # noqa: E402
from xqg_tui.types import Query  # noqa: E402

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not (XQUAD / "xquad.en.json").exists(), reason="needs ../shared/data/xquad"),
]
_WORD = re.compile(r"\w+")


def load_xquad(langs: tuple[str, ...] = ("ar", "ru")) -> tuple[dict[str, str], list[Query], dict[str, str]]:
    """passages (docid -> English paragraph), queries, qid -> English question."""
    en = json.loads((XQUAD / "xquad.en.json").read_text(encoding="utf-8"))
    passages: dict[str, str] = {}
    answers: dict[str, tuple[str, ...]] = {}
    en_question: dict[str, str] = {}
    for art in en["data"]:
        for para in art["paragraphs"]:
            docid = f"p{len(passages):03d}"
            passages[docid] = para["context"]
            for qa in para["qas"]:
                answers[qa["id"]] = tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                en_question[qa["id"]] = qa["question"]
    queries: list[Query] = []
    english: dict[str, str] = {}
    for lang in langs:
        data = json.loads((XQUAD / f"xquad.{lang}.json").read_text(encoding="utf-8"))
        for art in data["data"]:
            for para in art["paragraphs"]:
                for qa in para["qas"]:
                    qid = f"{qa['id']}-{lang}"
                    queries.append(Query(qid, qa["question"], lang, answers[qa["id"]]))
                    english[qid] = en_question[qa["id"]]
    return passages, queries, english


def overlap_run(passages: dict[str, str], texts: dict[str, str], depth: int = 100) -> dict:
    """Rank passages by shared lower-cased words; ties in a fixed per-query pseudo-random order."""
    bags = {d: set(_WORD.findall(t.lower())) for d, t in passages.items()}
    run = {}
    for qid, text in texts.items():
        words = set(_WORD.findall(text.lower()))

        def key(d: str, qid: str = qid) -> tuple[int, int]:
            return (-len(words & bags[d]), int(hashlib.md5((qid + d).encode()).hexdigest()[:8], 16))

        ranked = sorted(passages, key=key)[:depth]
        run[qid] = [(d, float(depth - r)) for r, d in enumerate(ranked)]
    return run


def measure() -> dict:
    passages, queries, english = load_xquad()
    runs = {
        "english-overlap": overlap_run(passages, english),  # strong: gold usually in the top 3
        "native-overlap": overlap_run(passages, {q.qid: q.text for q in queries}),  # weak, realistic
    }
    out: dict = {}
    for rname, run in runs.items():
        per_tok = {tk: r_at_kt_per_query(run, queries, passages, tokenizer=tk) for tk in TOKENIZERS}
        official = per_tok["official"]
        for tk, res in per_tok.items():
            row = {"macro": {}, "diff": {}}
            for m in ("R@2kt", "R@5kt"):
                per_lang = []
                for lang in ("ar", "ru"):
                    vals = [res[q.qid][m] for q in queries if q.lang == lang]
                    per_lang.append(sum(vals) / len(vals))
                row["macro"][m] = sum(per_lang) / len(per_lang)
                changed = [q for q in official if official[q][m] != res[q][m]]
                gained = sum(res[q][m] > official[q][m] for q in changed)
                row["diff"][m] = (len(changed), gained, len(changed) - gained)
            out[(rname, tk)] = row
    return out


def test_official_tokenizer_equals_nltk_word_tokenize_on_xquad(tmp_path: Path, monkeypatch) -> None:
    import nltk
    import nltk.tokenize as nt

    from test_evaluation import _write_punkt_tab

    _write_punkt_tab(tmp_path)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    nt._get_punkt_tokenizer.cache_clear()
    try:
        passages, _, _ = load_xquad(())
        assert len(passages) == 240
        for text in passages.values():
            assert official_word_tokenize(text) == nltk.word_tokenize(text)
    finally:
        nt._get_punkt_tokenizer.cache_clear()


@pytest.mark.slow
def test_tokenizer_variants_change_few_hits_except_whitespace() -> None:
    results = measure()
    n = 2 * 1190
    for rname in ("english-overlap", "native-overlap"):
        for m in ("R@2kt", "R@5kt"):
            line = results[(rname, "line")]["diff"][m][0]
            untrained = results[(rname, "punkt-untrained")]["diff"][m][0]
            ws = results[(rname, "whitespace")]["diff"][m][0]
            # sentence splitting matters, but little; skipping tokenisation matters a lot
            assert 0 < line < 0.01 * n
            assert untrained < 0.005 * n
            assert ws > 0.03 * n
    strong = results[("english-overlap", "official")]["macro"]["R@5kt"]
    weak = results[("native-overlap", "official")]["macro"]["R@5kt"]
    assert 0.8 < strong < 0.95 and 0.2 < weak < 0.4


if __name__ == "__main__":
    table = measure()
    print(f"{'run':16} {'tokenizer':16} {'R@2kt':>6} {'R@5kt':>6}  hits changed vs official (R@2kt / R@5kt, +gained -lost)")
    for (rname, tk), row in table.items():
        d2, d5 = row["diff"]["R@2kt"], row["diff"]["R@5kt"]
        print(f"{rname:16} {tk:16} {100 * row['macro']['R@2kt']:6.2f} {100 * row['macro']['R@5kt']:6.2f}"
              f"  {d2[0]} (+{d2[1]} -{d2[2]}) / {d5[0]} (+{d5[1]} -{d5[2]})")
