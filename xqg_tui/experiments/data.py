"""Experiment data: XQuAD split by article, XOR-TyDi translations as training pairs.

``xquad_split`` turns the XQuAD files into everything the scaling experiments
need, keeping training and evaluation questions apart:

* articles are shuffled (seeded) and split into *train* and *eval* articles;
  no paragraph of an eval article is ever a training positive or negative;
* within every paragraph the questions alternate between a *test* pool (even
  positions after the first: 1, 3, 5, ...) and a *generation* pool (0, 2, 4, ...);
* ``generated.oracle.jsonl`` gives each paragraph the generation-pool questions
  in every ``--gen-langs`` language as its "generated queries": human questions
  about the passage, never the test question or one of its translations (nor a
  word-for-word copy of a test question, which XQuAD has twice). It is
  an upper bound for a query generator ("oracle xQG"), not a generator's output;
* ``queries.test.LANG.jsonl``: the test pool of all articles (the languages and
  alpha experiments); ``queries.eval.LANG.jsonl``: the test pool of the eval
  articles only (the fine-tuning experiment);
* ``train.jsonl``: Tevatron training data from the train articles' questions
  (both pools, in ``--train-langs``): positive = the question's paragraph, hard
  negatives = the other paragraphs of the same article (same topic, wrong
  paragraph).

``xor_translations`` reads ``LANG-en/{LANG.txt,en.txt}`` (line-aligned human
translations of XOR-TyDi questions) into Tevatron pairs: the question in LANG is
the query, its English translation the one positive "passage". That teaches
*alignment*: a question and its translation should map to the same point, so
queries in every language land where English text about the same thing is.
It does not teach question-passage relevance (the positive is a question, not
an answer passage), so on its own it mostly helps where the encoder's languages
are poorly aligned, and it can shift the query-passage geometry the encoder
learnt. No negatives are written: the other examples of a batch serve.
"""
from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError, XQGError
from ..io.atomic import atomic_write_json, atomic_write_text
from ..io.corpus import read_corpus
from ..io.queries import read_queries, write_queries_jsonl
from ..io.xquad import convert_xquad
from ..languages import normalize_code
from ..training.encoder import TrainExample, write_training_file
from ..types import Passage


def _article(docid: str) -> int:
    # xquad-AA-PP (io/xquad.py's xquad_docid)
    try:
        return int(docid.split("-")[1])
    except (IndexError, ValueError):
        raise XQGError(f"unexpected XQuAD passage id {docid!r}") from None


def xquad_split(
    xquad_dir: str | Path,
    out_dir: str | Path,
    query_langs: Sequence[str] = ("ar", "ru"),
    gen_langs: Sequence[str] = ("ar", "ru"),
    train_langs: Sequence[str] | None = None,
    train_fraction: float = 0.5,
    seed: int = 0,
    negatives: int = 3,
) -> dict[str, Any]:
    """Write the split files into ``out_dir`` (see the module doc); returns a summary."""
    xquad_dir, out_dir = Path(xquad_dir), Path(out_dir)
    query_langs = [normalize_code(l) for l in query_langs]
    gen_langs = [normalize_code(l) for l in gen_langs]
    train_langs = [normalize_code(l) for l in (train_langs or query_langs)]
    if not 0.0 < train_fraction < 1.0:
        raise XQGError("--train-fraction must lie strictly between 0 and 1")
    all_langs = list(dict.fromkeys([*query_langs, *gen_langs, *train_langs]))
    files = {}
    for lang in all_langs:
        path = xquad_dir / f"xquad.{lang}.json"
        if not path.exists():
            raise InputError(path, None, "no such file (XQuAD has ar, de, el, en, es, hi, ro, ru, th, tr, vi, zh)")
        files[lang] = path
    en = xquad_dir / "xquad.en.json"
    convert_xquad(en, {l: p for l, p in files.items() if l != "en"}, out_dir, include_english="en" in files)
    passages = read_corpus(out_dir / "corpus.jsonl")
    by_docid = {p.docid: p for p in passages}
    queries = {lang: read_queries(out_dir / f"queries.{lang}.jsonl") for lang in all_langs}
    qrels_doc: dict[str, str] = {}
    for line in (out_dir / f"qrels.{all_langs[0]}.trec").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 4:
            qrels_doc[parts[0]] = parts[2]

    # Question positions within each paragraph, in file order (the same ids in every language).
    para_qids: dict[str, list[str]] = defaultdict(list)
    for q in queries[all_langs[0]]:
        para_qids[qrels_doc[q.qid]].append(q.qid)
    pool = {qid: ("test" if j % 2 else "gen") for qids in para_qids.values() for j, qid in enumerate(qids)}

    articles = sorted({_article(p.docid) for p in passages})
    order = list(articles)
    random.Random(seed).shuffle(order)
    n_train = max(1, min(len(order) - 1, round(len(order) * train_fraction)))
    train_articles = set(order[:n_train])

    written = ["corpus.jsonl"] + [f"queries.{l}.jsonl" for l in all_langs] + [f"qrels.{l}.trec" for l in all_langs]
    counts: dict[str, Any] = {"test": {}, "eval": {}}
    for lang in query_langs:
        test = [q for q in queries[lang] if pool[q.qid] == "test"]
        ev = [q for q in test if _article(qrels_doc[q.qid]) not in train_articles]
        write_queries_jsonl(out_dir / f"queries.test.{lang}.jsonl", test)
        write_queries_jsonl(out_dir / f"queries.eval.{lang}.jsonl", ev)
        written += [f"queries.test.{lang}.jsonl", f"queries.eval.{lang}.jsonl"]
        counts["test"][lang], counts["eval"][lang] = len(test), len(ev)

    text_of = {lang: {q.qid: q.text for q in queries[lang]} for lang in all_langs}
    # XQuAD repeats a few questions word for word under two ids; such a copy of a
    # test question must not become a "generated" query.
    test_texts = {text_of[lang][qid] for lang in all_langs for qid, where in pool.items() if where == "test"}
    gen_rows = []
    dropped = 0
    for p in passages:
        gq = {}
        for lang in gen_langs:
            texts = [text_of[lang][qid] for qid in para_qids.get(p.docid, []) if pool[qid] == "gen"]
            gq[lang] = [t for t in texts if t not in test_texts]
            dropped += len(texts) - len(gq[lang])
        gen_rows.append(json.dumps({"docid": p.docid, "generated_queries": gq}, ensure_ascii=False))
    atomic_write_text(out_dir / "generated.oracle.jsonl", "\n".join(gen_rows) + "\n")
    written.append("generated.oracle.jsonl")

    by_article: dict[int, list[Passage]] = defaultdict(list)
    for p in passages:
        by_article[_article(p.docid)].append(p)
    rng = random.Random(seed)
    examples: list[TrainExample] = []
    for lang in train_langs:
        for q in queries[lang]:
            docid = qrels_doc[q.qid]
            art = _article(docid)
            if art not in train_articles:
                continue
            others = [p for p in by_article[art] if p.docid != docid]
            negs = rng.sample(others, min(negatives, len(others)))
            examples.append(TrainExample(f"{q.qid}@{lang}", q.text, (by_docid[docid],), tuple(negs)))
    write_training_file(out_dir / "train.jsonl", examples)
    written.append("train.jsonl")
    summary = {
        "out_dir": str(out_dir),
        "seed": seed,
        "articles": {"train": sorted(train_articles), "eval": sorted(set(articles) - train_articles)},
        "pools": "per paragraph, questions at positions 0,2,4,... are oracle generated queries, 1,3,5,... test queries",
        "query_langs": query_langs,
        "gen_langs": gen_langs,
        "train_langs": train_langs,
        "train_examples": len(examples),
        "generated_dropped_as_copies_of_test_questions": dropped,
        "hard_negatives_per_example": negatives,
        "queries": counts,
        "files": written + ["split.json"],
    }
    atomic_write_json(out_dir / "split.json", summary)
    return summary


def xor_translations(
    root: str | Path,
    out: str | Path,
    langs: Sequence[str] = ("ar", "bn", "fi", "ja", "ko", "ru", "te"),
    per_lang: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Tevatron pairs (question in LANG -> its English translation) from ``root/LANG-en/``."""
    root = Path(root)
    rng = random.Random(seed)
    examples: list[TrainExample] = []
    counts: dict[str, int] = {}
    for lang in (normalize_code(l) for l in langs):
        folder = root / f"{lang}-en"
        src, tgt = folder / f"{lang}.txt", folder / "en.txt"
        for path in (src, tgt):
            if not path.exists():
                raise InputError(path, None, "no such file (expected LANG-en/LANG.txt and LANG-en/en.txt)")
        a = src.read_text(encoding="utf-8").splitlines()
        b = tgt.read_text(encoding="utf-8").splitlines()
        if len(a) != len(b):
            raise InputError(src, None, f"{len(a)} lines but {tgt.name} has {len(b)}: the files must be line-aligned")
        pairs = [(i, x.strip(), y.strip()) for i, (x, y) in enumerate(zip(a, b)) if x.strip() and y.strip()]
        rng.shuffle(pairs)
        if per_lang is not None:
            pairs = pairs[:per_lang]
        counts[lang] = len(pairs)
        for i, x, y in pairs:
            examples.append(TrainExample(f"xor-{lang}-{i}", x, (Passage(f"xor-{lang}-{i}-en", "", y),)))
    rng.shuffle(examples)  # languages mixed, so any prefix (a --sizes subset) covers them all
    n = write_training_file(out, examples)
    return {"out": str(out), "examples": n, "per_lang": counts, "seed": seed}
