"""Relevance-judgment metrics per query (Recall@k, MRR@10, nDCG@10) via ir-measures.

Nothing here is hand-computed: names are mapped onto ir-measures measures
(``Recall@k`` -> ``R@k``, ``MRR@k`` -> ``RR@k``, ``nDCG@k`` -> ``nDCG@k``) and
evaluated by its trec_eval-compatible providers.

Two things are arranged around ir-measures so the numbers mean what a reader
expects:

* **Rank order is the list order.** trec_eval sorts by score and breaks ties by
  docid, so tied or unsorted scores would silently reorder a run. Each run list
  is re-scored ``n, n-1, ..., 1`` before evaluation; a docid listed twice keeps
  its first (best) rank.
* **Every judged query counts.** Queries in the qrels with no run entry (or an
  empty one) score 0 on every measure instead of being dropped from the mean.
  A query whose judgments are all non-relevant also scores 0.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import XQGError
from ..types import Qrels, Run

DEFAULT_MEASURES: tuple[str, ...] = ("Recall@1", "Recall@5", "Recall@10", "MRR@10", "nDCG@10")
# also accepted: any Recall@k / MRR@k / nDCG@k, e.g. the Recall@20/100 of the paper
EXTENDED_MEASURES: tuple[str, ...] = DEFAULT_MEASURES + ("Recall@20", "Recall@100")

_NAME = re.compile(r"^(Recall|MRR|nDCG)@([1-9][0-9]*)$")


def recall_names(k_values: Iterable[int]) -> tuple[str, ...]:
    """``(1, 5) -> ("Recall@1", "Recall@5")``."""
    return tuple(f"Recall@{int(k)}" for k in k_values)


def to_ir_measure(name: str) -> Any:
    """The ir-measures measure for one of our metric names."""
    import ir_measures  # lazy: keeps CLI/TUI start-up fast

    m = _NAME.match(name)
    if m is None:
        raise XQGError(f"unknown metric '{name}'; use Recall@k, MRR@k or nDCG@k (k a positive integer)")
    family, k = m.group(1), int(m.group(2))
    if family == "Recall":
        return ir_measures.R @ k
    if family == "MRR":
        return ir_measures.RR @ k
    return ir_measures.nDCG @ k


def _rank_scored(run: Run, qids: Iterable[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for qid in qids:
        ranked = run.get(qid) or []
        scores: dict[str, float] = {}
        n = len(ranked)
        for i, (docid, _score) in enumerate(ranked):
            scores.setdefault(str(docid), float(n - i))
        if scores:
            out[qid] = scores
    return out


def qrels_metrics_per_query(
    run: Run,
    qrels: Qrels,
    measures: Sequence[str] = DEFAULT_MEASURES,
    qids: Iterable[str] | None = None,
) -> dict[str, dict[str, float]]:
    """``{qid: {"Recall@1": ..., "MRR@10": ..., ...}}`` for every judged query.

    ``qids`` restricts the evaluated set (ids without judgments are left out);
    by default it is every query in ``qrels``. Values are fractions in [0, 1].
    """
    names = tuple(dict.fromkeys(measures))
    if not names:
        raise XQGError("no metric requested")
    by_measure = {to_ir_measure(n): n for n in names}
    wanted = list(qrels) if qids is None else [q for q in dict.fromkeys(qids) if q in qrels]
    out: dict[str, dict[str, float]] = {q: {n: 0.0 for n in names} for q in wanted}
    scored = _rank_scored(run, wanted)
    if not scored:
        return out
    sub_qrels = {q: {str(d): int(r) for d, r in qrels[q].items()} for q in scored}
    import ir_measures

    for metric in ir_measures.iter_calc(list(by_measure), sub_qrels, scored):
        row = out.get(metric.query_id)
        if row is not None:  # providers may report extra ids; only the evaluated set counts
            row[by_measure[metric.measure]] = float(metric.value)
    return out
