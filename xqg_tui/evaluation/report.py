"""Evaluate a run per language, compare two runs, and render the results.

Computing and rendering are separate (as in Tevatron's eval package): the
:func:`evaluate` / :func:`compare_reports` core returns plain data with every
per-query value kept, and :func:`render_table`, :func:`to_csv` and
:func:`to_markdown` only format it.

What is averaged over what:

* ``R@2kt`` / ``R@5kt`` (needs ``passage_text``): over a language's queries that
  have span answers (yes/no-only queries are skipped, as in the official script).
* ``Recall@k`` / ``MRR@10`` / ``nDCG@10`` (needs ``qrels``): over a language's
  queries that have judgments.
* In both, a query without a run entry counts as a miss (0).
* ``"n"`` is the number of the language's queries in the evaluated set; the
  query count behind each single metric is in ``EvalReport.counts``.
* ``macro`` = the unweighted mean of the per-language values (the XOR-TyDi
  convention); its ``"n"`` is the total number of queries.
"""
from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Collection, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from ..errors import XQGError
from ..languages import normalize_code
from ..types import Qrels, Query, Run
from .compare import DEFAULT_ALPHA, is_significant, paired_by_id, paired_ttest
from .metrics import qrels_metrics_per_query, recall_names
from .rkt import DEFAULT_BUDGETS, PassageText, TokenCache, budget_name, r_at_kt_per_query
from .tokenization import DEFAULT_TOKENIZER

DEFAULT_K_VALUES: tuple[int, ...] = (1, 5, 10)
RANK_MEASURES: tuple[str, ...] = ("MRR@10", "nDCG@10")
MACRO = "macro"


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


@dataclass
class EvalReport:
    """Per-language and macro-averaged metrics of one run, with per-query values."""

    metrics: tuple[str, ...]  # display order
    per_language: dict[str, dict[str, float]]  # lang -> {metric: mean, ..., "n": count}
    macro: dict[str, float]  # metric -> mean over languages, plus "n" (total queries)
    per_query: dict[str, dict[str, float]]  # metric -> {qid: value}
    query_lang: dict[str, str]  # qid -> lang, for every evaluated query
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # lang -> metric -> queries averaged
    # What in the inputs did not line up (see :func:`check_inputs`): counts, and one line each.
    unmatched: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        return list(self.per_language)

    def to_dict(self) -> dict[str, Any]:
        """``{"per_language": {lang: {metric: fraction, ..., "n": int}}, "macro": {...}}``."""
        out: dict[str, Any] = {
            "per_language": {lang: dict(values) for lang, values in self.per_language.items()},
            "macro": dict(self.macro),
        }
        if self.unmatched:
            out["unmatched"] = dict(self.unmatched)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


@dataclass
class Comparison:
    """``other`` against ``base``, per language and metric, paired on query ids.

    Each entry: ``{"base", "other", "diff" (other - base), "p_value",
    "significant" (p < alpha), "n" (paired queries)}``. Means are over the
    paired queries, so diff and test agree. Macro entries average the
    per-language base/other values; a macro average is no per-query mean, so
    it gets no test (``p_value`` and ``significant`` are ``None``).
    """

    metrics: tuple[str, ...]
    per_language: dict[str, dict[str, dict[str, Any]]]
    macro: dict[str, dict[str, Any]]
    alpha: float = DEFAULT_ALPHA

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_language": {lang: {m: dict(e) for m, e in row.items()} for lang, row in self.per_language.items()},
            "macro": {m: dict(e) for m, e in self.macro.items()},
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _query_langs(queries: Sequence[Query]) -> dict[str, str]:
    out: dict[str, str] = {}
    for q in queries:
        if q.qid in out:
            raise XQGError(f"query id '{q.qid}' appears twice in the evaluated queries")
        lang = normalize_code(q.lang)  # XOR-TyDi writes " ar"
        if not lang:
            raise XQGError(f"query '{q.qid}' has no language code")
        out[q.qid] = lang
    return out


def evaluate(
    run: Run,
    queries: Sequence[Query],
    qrels: Qrels | None = None,
    passage_text: PassageText | None = None,
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    *,
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    cache: TokenCache | None = None,
    tokenizer: str = DEFAULT_TOKENIZER,
    known_docids: Collection[str] | None = None,
) -> EvalReport:
    """Evaluate ``run`` on ``queries``, per language.

    R@kt metrics need ``passage_text`` (docid -> passage text) and queries with
    answers; ``Recall@k`` for ``k_values``, ``MRR@10`` and ``nDCG@10`` need
    ``qrels``. ``cache`` (a :class:`TokenCache`) can be shared across calls on
    one corpus so passages are tokenised once. ``known_docids`` (the collection's
    docids; by default the keys of a ``passage_text`` mapping) lets qrels that
    name other passages be caught: a score is never computed from nothing
    (see :func:`check_inputs`).
    """
    if not queries:
        raise XQGError("no queries to evaluate")
    query_lang = _query_langs(queries)
    if run and not any(qid in run for qid in query_lang):
        raise XQGError(
            "the run has no query id in common with the queries",
            hint=f"e.g. run id '{next(iter(run))}' vs query id '{queries[0].qid}'",
        )
    if any(not isinstance(k, int) or isinstance(k, bool) or k <= 0 for k in k_values):
        raise XQGError(f"cut-offs must be positive integers, got {list(k_values)}")

    if known_docids is None and isinstance(passage_text, Mapping):
        known_docids = passage_text.keys()
    unmatched, warnings = check_inputs(run, query_lang, qrels, known_docids)

    per_query: dict[str, dict[str, float]] = {}
    if passage_text is not None:
        rkt = r_at_kt_per_query(run, queries, passage_text, budgets, cache=cache, tokenizer=tokenizer)
        for name in (budget_name(b) for b in budgets):
            if rkt:
                per_query[name] = {qid: vals[name] for qid, vals in rkt.items()}
    if qrels is not None:
        names = recall_names(dict.fromkeys(k_values)) + RANK_MEASURES
        judged = [qid for qid in query_lang if qid in qrels]
        if not judged:
            raise XQGError(
                f"none of the {len(query_lang)} queries has relevance judgments in the qrels",
                hint="do the query ids of the qrels match the queries file?",
            )
        by_query = qrels_metrics_per_query(run, qrels, names, qids=judged)
        for name in names:
            per_query[name] = {qid: vals[name] for qid, vals in by_query.items()}
    if not per_query:
        if passage_text is None and qrels is None:
            raise XQGError("nothing to evaluate: give qrels, or passage texts and queries with answers")
        raise XQGError("no metric can be computed: the queries have no span answers (and no qrels were given)")

    metrics = tuple(per_query)
    per_language: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    for lang in sorted(set(query_lang.values())):
        qids = [qid for qid, lg in query_lang.items() if lg == lang]
        row: dict[str, float] = {}
        counts[lang] = {}
        for name in metrics:
            values = [per_query[name][q] for q in qids if q in per_query[name]]
            counts[lang][name] = len(values)
            if values:
                row[name] = _mean(values)
        row["n"] = len(qids)
        per_language[lang] = row

    macro: dict[str, float] = {}
    for name in metrics:
        lang_values = [row[name] for row in per_language.values() if name in row]
        if lang_values:
            macro[name] = _mean(lang_values)
    macro["n"] = len(query_lang)
    return EvalReport(metrics, per_language, macro, per_query, query_lang, counts, unmatched, warnings)


def check_inputs(
    run: Run, query_lang: Mapping[str, str], qrels: Qrels | None, known_docids: Collection[str] | None
) -> tuple[dict[str, int], list[str]]:
    """Count what does not line up between run, queries, qrels and collection.

    Qrels whose relevant passages are all outside the collection would score 0.0
    everywhere without any mistake in the run: that is refused. Partial mismatches
    are counted (``unmatched``) and explained (``warnings``), never silently scored.
    """
    unmatched: dict[str, int] = {}
    warnings: list[str] = []

    def note(key: str, count: int, text: str) -> None:
        if count:
            unmatched[key] = count
            warnings.append(text)

    missing_run = sum(1 for qid in query_lang if qid not in run)
    note("queries_not_in_run", missing_run,
         f"{missing_run} of {len(query_lang)} queries have no ranking in the run (counted as misses)")
    if qrels is None:
        return unmatched, warnings
    judged = [qid for qid in query_lang if qid in qrels]
    note("queries_without_qrels", len(query_lang) - len(judged),
         f"{len(query_lang) - len(judged)} of {len(query_lang)} queries have no judgments in the qrels (left out of Recall/MRR/nDCG)")
    extra = sum(1 for qid in qrels if qid not in query_lang)
    note("qrels_queries_not_in_queries", extra, f"{extra} judged query ids of the qrels are not in the queries file (ignored)")
    relevant = {(qid, d) for qid in judged for d, rel in qrels[qid].items() if rel > 0}
    if not relevant:
        return unmatched, warnings
    if known_docids is not None:
        known = known_docids if isinstance(known_docids, (AbstractSet, Mapping)) else set(known_docids)
        outside = sorted({d for _, d in relevant if d not in known})
        if len(outside) == len({d for _, d in relevant}):
            raise XQGError(
                f"none of the {len(outside)} relevant passages in the qrels is in the collection (e.g. '{outside[0]}')",
                hint="the qrels belong to another corpus or use other docids; every score would be 0",
            )
        if outside:
            lost = sum(1 for qid in judged if all(d not in known for d, rel in qrels[qid].items() if rel > 0))
            note("qrels_docids_not_in_collection", len(outside),
                 f"{len(outside)} relevant docids of the qrels are not in the collection (e.g. '{outside[0]}'); "
                 f"{lost} queries have no findable relevant passage")
            if lost:
                unmatched["queries_without_findable_relevant"] = lost
    else:
        ranked = {d for ranking in run.values() for d, _ in ranking}
        if ranked and not any(d in ranked for _, d in relevant):
            note("qrels_docids_never_ranked", len({d for _, d in relevant}),
                 "no relevant docid of the qrels occurs anywhere in the run: do the qrels belong to this corpus? "
                 "(give --index or --corpus to check them against the collection)")
    return unmatched, warnings


def compare_reports(base: EvalReport, other: EvalReport, alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Compare ``other`` with ``base`` per language and metric (paired t-test on query ids)."""
    metrics = tuple(m for m in base.metrics if m in other.metrics)
    per_language: dict[str, dict[str, dict[str, Any]]] = {}
    for lang in base.languages:
        row: dict[str, dict[str, Any]] = {}
        for name in metrics:
            base_vals = {q: v for q, v in base.per_query[name].items() if base.query_lang.get(q) == lang}
            ids, a, b = paired_by_id(base_vals, other.per_query[name])
            if not ids:
                continue
            diff, p = paired_ttest(a, b)
            row[name] = {
                "base": _mean(a),
                "other": _mean(b),
                "diff": diff,
                "p_value": p,
                "significant": is_significant(p, alpha),
                "n": len(ids),
            }
        if row:
            per_language[lang] = row
    if not per_language:
        raise XQGError("the two reports share no query and metric to compare")

    macro: dict[str, dict[str, Any]] = {}
    for name in metrics:
        entries = [row[name] for row in per_language.values() if name in row]
        if entries:
            b_mean = _mean([e["base"] for e in entries])
            o_mean = _mean([e["other"] for e in entries])
            macro[name] = {
                "base": b_mean,
                "other": o_mean,
                "diff": o_mean - b_mean,
                "p_value": None,
                "significant": None,
                "n": sum(e["n"] for e in entries),
            }
    return Comparison(metrics, per_language, macro, alpha)


# ---------------------------------------------------------------- rendering


def _pct(value: float) -> str:
    return f"{100.0 * value:.1f}"


def _diff_cell(entry: dict[str, Any]) -> str:
    mark = "*" if entry.get("significant") else ""
    return f"{100.0 * entry['diff']:+.1f}{mark}"


def _report_grid(report: EvalReport, comparison: Comparison | None) -> tuple[list[str], list[list[str]]]:
    header = ["lang", "n", *report.metrics]
    rows: list[list[str]] = []
    scopes = [(lang, row, comparison.per_language.get(lang, {}) if comparison else {})
              for lang, row in report.per_language.items()]
    scopes.append((MACRO, report.macro, comparison.macro if comparison else {}))
    for scope, values, cmp_row in scopes:
        cells = [scope, str(int(values["n"]))]
        for name in report.metrics:
            if name not in values:
                cells.append("-")
                continue
            cell = _pct(values[name])
            if name in cmp_row:
                cell += f" ({_diff_cell(cmp_row[name])})"
            cells.append(cell)
        rows.append(cells)
    return header, rows


def _comparison_grid(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    header = ["lang", *comparison.metrics]
    rows: list[list[str]] = []
    scopes = list(comparison.per_language.items()) + [(MACRO, comparison.macro)]
    for scope, row in scopes:
        cells = [scope]
        for name in comparison.metrics:
            e = row.get(name)
            cells.append("-" if e is None else f"{_pct(e['base'])} -> {_pct(e['other'])} ({_diff_cell(e)})")
        rows.append(cells)
    return header, rows


def _legend(alpha: float) -> str:
    return f"values in %; (+x) = change vs base in points; * = p < {alpha:g} (paired t-test)"


def render_table(report: EvalReport, comparison: Comparison | None = None) -> str:
    """A fixed-width terminal table in percent, one row per language plus macro.

    With ``comparison`` (whose ``other`` is this report) every cell also shows
    the change against the base run, starred when significant.
    """
    header, rows = _report_grid(report, comparison)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join([first, *rest]).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows[:-1]]
    out.append("  ".join("-" * w for w in widths))
    out.append(line(rows[-1]))
    out.append(_legend(comparison.alpha) if comparison else "values in %")
    return "\n".join(out) + "\n"


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    def esc(c: str) -> str:
        return c.replace("|", "\\|")

    out = ["| " + " | ".join(esc(h) for h in header) + " |",
           "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def to_markdown(obj: EvalReport | Comparison, comparison: Comparison | None = None) -> str:
    """A Markdown table (percent) of a report (optionally with a comparison's changes) or of a comparison."""
    if isinstance(obj, Comparison):
        header, rows = _comparison_grid(obj)
        return _markdown(header, rows) + "\n" + _legend(obj.alpha) + "\n"
    header, rows = _report_grid(obj, comparison)
    legend = _legend(comparison.alpha) if comparison else "values in %"
    return _markdown(header, rows) + "\n" + legend + "\n"


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.6f}"


def to_csv(obj: EvalReport | Comparison, per_query: bool = False) -> str:
    """CSV with fractions (not percent).

    A report gives one row per language plus ``macro`` (``per_query=True``: one
    row per query instead, empty where a metric does not apply); a comparison
    gives one row per (language, metric).
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if isinstance(obj, Comparison):
        writer.writerow(["lang", "metric", "base", "other", "diff", "p_value", "significant", "n"])
        for scope, row in [*obj.per_language.items(), (MACRO, obj.macro)]:
            for name in obj.metrics:
                e = row.get(name)
                if e is not None:
                    writer.writerow([scope, name, *(_num(e[k]) for k in
                                                    ("base", "other", "diff", "p_value", "significant", "n"))])
        return buf.getvalue()
    if per_query:
        writer.writerow(["qid", "lang", *obj.metrics])
        for qid, lang in obj.query_lang.items():
            writer.writerow([qid, lang, *(_num(obj.per_query[m].get(qid)) for m in obj.metrics)])
        return buf.getvalue()
    writer.writerow(["lang", "n", *obj.metrics])
    for scope, values in [*obj.per_language.items(), (MACRO, obj.macro)]:
        writer.writerow([scope, int(values["n"]), *(_num(values.get(m)) for m in obj.metrics)])
    return buf.getvalue()
