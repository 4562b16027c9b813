"""The fixed core every experiment shares: encode queries once, evaluate settings, test them.

An experiment is a list of :class:`Setting` objects. A setting says which fusion
spec to rank with for each query language (``variants``); several variants are
averaged per query (the "random subsets of size k" series). The core

1. encodes every query once (``Context``), then ranks with FAISS over the fused
   matrix of each spec (the searcher caches it), so sweeping alpha, languages or
   n runs no model;
2. evaluates each setting with :func:`xqg_tui.evaluation.evaluate` (per-query
   values kept);
3. compares every setting with the baseline setting (paired t-test per language
   and metric, :func:`compare_reports`).

Rendering (JSON, Markdown, plots) lives in ``render.py`` and only reads the
:class:`ExperimentResult` built here.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import XQGError
from ..evaluation.compare import DEFAULT_ALPHA
from ..evaluation.report import MACRO, Comparison, EvalReport, compare_reports, evaluate
from ..evaluation.rkt import TokenCache
from ..index.fusion import FusionSpec
from ..languages import normalize_code
from ..types import Qrels, Query, Run

ALL = "*"  # variant key: the spec applies to every query language
Variant = Mapping[str, FusionSpec]  # query lang (or ALL) -> spec
Progress = Callable[[str], None]

# Metrics shown in tables/plots by default, in this order, when present.
DEFAULT_TABLE_METRICS = ("R@2kt", "R@5kt", "Recall@1", "MRR@10")
PLOT_METRIC_PREFERENCE = ("MRR@10", "R@2kt", "Recall@10", "R@5kt")


def spec_params(spec: FusionSpec | None) -> dict[str, Any]:
    """JSON form of a spec: the exact settings that produced a ranking."""
    if spec is None or spec.is_plain:
        return {"plain": True}
    out: dict[str, Any] = {"alpha": spec.alpha, "fusion": spec.fusion, "langs": list(spec.langs), "n": spec.n}
    if spec.weights:
        out["weights"] = dict(spec.weights)
    return out


@dataclass
class Setting:
    """One point of an experiment (one row of its table)."""

    key: str  # unique id, e.g. "growing:3"
    series: str  # line in the plot, e.g. "growing (paper order)"
    x: float  # position on the x axis (number of languages, n, alpha, training size)
    label: str  # row label in tables
    variants: list[Variant]  # averaged per query when more than one
    params: dict[str, Any] = field(default_factory=dict)  # extra exact settings for the JSON
    recorded_variants: list[dict[str, Any]] | None = None  # JSON form, when loaded from a saved result

    def describe(self) -> dict[str, Any]:
        if self.recorded_variants is not None and not self.variants:
            variants = self.recorded_variants
        else:
            variants = [{k: spec_params(v) for k, v in var.items()} for var in self.variants]
        return {"key": self.key, "series": self.series, "x": self.x, "label": self.label,
                "variants": variants, **({"params": self.params} if self.params else {})}


@dataclass
class SettingResult:
    setting: Setting
    report: EvalReport
    comparison: Comparison | None  # vs the experiment's baseline (None for the baseline itself)
    seconds: float = 0.0


@dataclass
class ExperimentResult:
    """Everything an experiment computed; renderers only read this."""

    name: str
    title: str
    description: str
    baseline: str  # key of the baseline setting
    results: list[SettingResult]
    languages: list[str]  # query languages evaluated
    metrics: tuple[str, ...]
    settings: dict[str, Any]  # the exact experiment arguments
    provenance: dict[str, Any] = field(default_factory=dict)
    x_label: str = ""
    x_categorical: bool = False  # alpha values are plotted at even spacing
    notes: list[str] = field(default_factory=list)
    # extra tables: (title, [(setting key, base key), ...]) compared with a paired t-test
    extra_comparisons: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    significance_level: float = DEFAULT_ALPHA

    def by_key(self, key: str) -> SettingResult:
        for r in self.results:
            if r.setting.key == key:
                return r
        raise KeyError(key)

    @property
    def series(self) -> list[str]:
        return list(dict.fromkeys(r.setting.series for r in self.results))


# ---------------------------------------------------------------- inputs


_LANG_PREFIX = re.compile(r"^([A-Za-z]{2,3}(?:-[A-Za-z0-9]+)?)=(.+)$")


def split_file_args(values: Sequence[str] | None) -> list[tuple[str | None, Path]]:
    """``--queries`` values: repeatable and/or comma lists; ``LANG=FILE`` names a TSV's language."""
    out: list[tuple[str | None, Path]] = []
    for value in values or []:
        for item in str(value).split(","):
            item = item.strip()
            if not item:
                continue
            m = _LANG_PREFIX.match(item)
            if m and not Path(item).exists():
                out.append((normalize_code(m.group(1)), Path(m.group(2))))
            else:
                out.append((None, Path(item)))
    return out


def load_queries(files: Sequence[tuple[str | None, Path]]) -> tuple[list[Query], dict[str, str]]:
    """Read every queries file; ids repeated across files (XQuAD shares ids between
    languages) become ``qid@lang``. Returns the queries and internal id -> original id."""
    from ..io.queries import read_queries

    if not files:
        raise XQGError("no queries given: use --queries FILE (one per language, repeatable)")
    per_file = [read_queries(path, lang=lang) for lang, path in files]
    seen: dict[str, int] = {}
    for qs in per_file:
        for q in qs:
            seen[q.qid] = seen.get(q.qid, 0) + 1
    clash = any(c > 1 for c in seen.values())
    queries: list[Query] = []
    original: dict[str, str] = {}
    for qs in per_file:
        for q in qs:
            lang = normalize_code(q.lang)
            qid = f"{q.qid}@{lang}" if clash else q.qid
            if qid in original:
                raise XQGError(f"query id {q.qid!r} appears twice in language {lang!r} across the queries files")
            original[qid] = q.qid
            queries.append(Query(qid, q.text, lang, q.answers))
    return queries, original


def load_qrels(paths: Sequence[Path], original: Mapping[str, str]) -> Qrels | None:
    """Merge qrels files and map them onto the (possibly renamed) query ids."""
    from ..io.qrels import read_qrels

    if not paths:
        return None
    merged: Qrels = {}
    for path in paths:
        for qid, judged in read_qrels(path).items():
            merged.setdefault(qid, {}).update(judged)
    return {new: dict(merged[old]) for new, old in original.items() if old in merged}


# ---------------------------------------------------------------- evaluation


def mean_report(reports: Sequence[EvalReport]) -> EvalReport:
    """Average several reports query by query (the mean over random language subsets);
    per-language and macro values are aggregated as :func:`evaluate` does."""
    if len(reports) == 1:
        return reports[0]
    first = reports[0]
    metrics = first.metrics
    per_query: dict[str, dict[str, float]] = {}
    for m in metrics:
        qids = first.per_query[m].keys()
        per_query[m] = {q: math.fsum(r.per_query[m][q] for r in reports) / len(reports) for q in qids}
    per_language: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    for lang in first.per_language:
        qids = [q for q, lg in first.query_lang.items() if lg == lang]
        row: dict[str, float] = {}
        counts[lang] = {}
        for m in metrics:
            vals = [per_query[m][q] for q in qids if q in per_query[m]]
            counts[lang][m] = len(vals)
            if vals:
                row[m] = math.fsum(vals) / len(vals)
        row["n"] = len(qids)
        per_language[lang] = row
    macro: dict[str, float] = {}
    for m in metrics:
        vals = [row[m] for row in per_language.values() if m in row]
        if vals:
            macro[m] = math.fsum(vals) / len(vals)
    macro["n"] = len(first.query_lang)
    return EvalReport(metrics, per_language, macro, per_query, dict(first.query_lang), counts)


class Context:
    """One searcher + one query set, encoded once; evaluates fusion settings by vectors only."""

    def __init__(
        self,
        searcher: Any,
        queries: Sequence[Query],
        qrels: Qrels | None,
        k: int = 100,
        token_cache: TokenCache | None = None,
        query_vectors: np.ndarray | None = None,
        progress: Progress | None = None,
        query_cache: Path | None = None,
    ) -> None:
        if not queries:
            raise XQGError("no queries to evaluate")
        self.searcher = searcher
        self.queries = list(queries)
        self.qrels = qrels
        self.k = int(k)
        if self.k < 1:
            raise XQGError(f"--k must be >= 1, not {k}")
        self.cache = token_cache or TokenCache()
        self.progress = progress
        index = searcher.index
        self.docids = [p.docid for p in index.passages]
        self.passage_text = {p.docid: p.text for p in index.passages}
        self.langs = sorted({q.lang for q in self.queries})
        self.rows_by_lang = {l: [i for i, q in enumerate(self.queries) if q.lang == l] for l in self.langs}
        t0 = time.perf_counter()
        self.query_cache_hit = False
        if query_vectors is None:
            query_vectors = self._encode(searcher, query_cache)
        self.Q = np.ascontiguousarray(query_vectors, dtype=np.float32)
        self.encode_seconds = time.perf_counter() - t0
        self._search: dict[tuple[FusionSpec | None, str], list[list[tuple[str, float]]]] = {}
        self._reports: dict[tuple, EvalReport] = {}

    def _encode(self, searcher: Any, cache: Path | None) -> np.ndarray:
        """The one model run of a vector-only experiment (or a cached copy of it, keyed
        by the encoder's identity and the exact query texts)."""
        texts = [q.text for q in self.queries]
        path = None
        if cache is not None:
            from ..io.atomic import load_npy, save_npy_atomic
            from ..models.encoder import IDENTITY_KEYS

            fp = searcher.index.manifest.get("encoder") or {}
            ident = json.dumps({k: fp.get(k) for k in (*IDENTITY_KEYS, "max_query_length")}, sort_keys=True)
            key = hashlib.sha256((ident + "\x00" + "\x00".join(texts)).encode()).hexdigest()[:24]
            path = Path(cache) / f"queries-{key}.npy"
            if path.exists():
                Q = load_npy(path)
                if Q.shape[0] == len(texts):
                    self.query_cache_hit = True
                    return Q
        Q = searcher.encode_queries(texts)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_npy_atomic(path, np.asarray(Q, dtype=np.float32))
        return Q

    def _ranked(self, spec: FusionSpec | None, lang: str) -> list[list[tuple[str, float]]]:
        key = (None if spec is None or spec.is_plain else spec, lang)
        if key not in self._search:
            rows = self.rows_by_lang[lang]
            scores, idx = self.searcher.search_vectors(self.Q[rows], self.k, key[0])
            self._search[key] = [
                [(self.docids[int(i)], float(s)) for s, i in zip(srow, irow) if i >= 0]
                for srow, irow in zip(scores, idx)
            ]
        return self._search[key]

    def run_variant(self, variant: Variant, langs: Sequence[str] | None = None) -> tuple[Run, list[Query]]:
        """The run of one variant over the query languages it covers."""
        run: Run = {}
        covered: list[Query] = []
        for lang in langs or self.langs:
            if lang in variant:
                spec = variant[lang]
            elif ALL in variant:
                spec = variant[ALL]
            else:
                continue  # this setting does not apply to this language (e.g. no own-language queries)
            for row, ranked in zip(self.rows_by_lang[lang], self._ranked(spec, lang)):
                run[self.queries[row].qid] = ranked
                covered.append(self.queries[row])
        return run, covered

    def evaluate_variant(self, variant: Variant) -> EvalReport | None:
        key = tuple(sorted((l, self._spec_key(s)) for l, s in variant.items()))
        if key not in self._reports:
            run, covered = self.run_variant(variant)
            if not covered:
                return None
            self._reports[key] = evaluate(run, covered, qrels=self.qrels, passage_text=self.passage_text, cache=self.cache)
        return self._reports[key]

    @staticmethod
    def _spec_key(spec: FusionSpec | None) -> Any:
        return None if spec is None or spec.is_plain else spec

    def evaluate_setting(self, setting: Setting) -> EvalReport | None:
        reports = [r for r in (self.evaluate_variant(v) for v in setting.variants) if r is not None]
        if not reports:
            return None
        # Random subsets cover the same queries in each variant, so they average query by query.
        return mean_report(reports)


def significance_marks(entry: Mapping[str, Any] | None) -> str:
    """``*`` significantly better than the baseline, ``†`` significantly worse (p < 0.05)."""
    if not entry or not entry.get("significant"):
        return ""
    return "*" if float(entry.get("diff", 0.0)) > 0 else "†"


def run_settings(
    ctx: Context,
    settings: Sequence[Setting],
    baseline: str,
    progress: Progress | None = None,
) -> list[SettingResult]:
    """Evaluate every setting on ``ctx`` and compare each with ``baseline``."""
    results: list[SettingResult] = []
    reports: dict[str, EvalReport] = {}
    for i, s in enumerate(settings, 1):
        t0 = time.perf_counter()
        report = ctx.evaluate_setting(s)
        if report is None:
            continue
        reports[s.key] = report
        results.append(SettingResult(s, report, None, time.perf_counter() - t0))
        if progress is not None:
            progress(f"[{i}/{len(settings)}] {s.series}: {s.label}")
    attach_comparisons(results, baseline)
    return results


def attach_comparisons(results: list[SettingResult], baseline: str) -> None:
    base = next((r for r in results if r.setting.key == baseline), None)
    if base is None:
        raise XQGError(f"the baseline setting {baseline!r} produced no result")
    for r in results:
        if r is not base:
            r.comparison = compare_reports(base.report, r.report)


def compare_pairs(result: ExperimentResult, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str, Comparison]]:
    out = []
    for key, base in pairs:
        try:
            a, b = result.by_key(base), result.by_key(key)
        except KeyError:
            continue
        out.append((key, base, compare_reports(a.report, b.report)))
    return out


def pick_metrics(available: Sequence[str], wanted: Sequence[str] | None) -> tuple[str, ...]:
    """The table metrics: the requested ones that exist, else the defaults that exist."""
    if wanted:
        missing = [m for m in wanted if m not in available]
        if missing:
            raise XQGError(f"metric(s) {', '.join(missing)} not computed; available: {', '.join(available)}")
        return tuple(wanted)
    chosen = tuple(m for m in DEFAULT_TABLE_METRICS if m in available)
    return chosen or tuple(available)


def plot_metric(available: Sequence[str], wanted: str | None = None) -> str:
    if wanted:
        if wanted not in available:
            raise XQGError(f"metric {wanted} not computed; available: {', '.join(available)}")
        return wanted
    for m in PLOT_METRIC_PREFERENCE:
        if m in available:
            return m
    return available[0]


def value(report: EvalReport, lang: str, metric: str) -> float | None:
    row = report.macro if lang == MACRO else report.per_language.get(lang, {})
    v = row.get(metric)
    return None if v is None else float(v)
