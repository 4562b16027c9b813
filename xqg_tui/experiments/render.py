"""Rendering an :class:`ExperimentResult`: JSON, Markdown, a PNG plot and a terminal plot.

Nothing here computes a metric; every number comes from the result object.
Files written by :func:`write_outputs` into the output folder:

* ``result.json``: settings, provenance, per-setting per-language metrics,
  significance vs the baseline, and the Markdown (the app's evaluation screen
  shows its ``markdown`` key);
* ``per_query.json``: every per-query value (aligned with a list of query ids),
  kept apart so the summary stays readable; its sha256 is in ``result.json``;
* ``results.md``, ``plot.png`` and ``plot.txt`` (the terminal plot without colour).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ..evaluation.report import MACRO
from ..io.atomic import atomic_write_bytes, atomic_write_text
from .core import ExperimentResult, compare_pairs, plot_metric, significance_marks, value
from .provenance import sha256_file

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
LEGEND = "values in %; * = significantly higher than the baseline, † = significantly lower (paired t-test, p < {p:g})"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100.0 * v:.1f}"


def _cols(result: ExperimentResult) -> list[str]:
    return [*result.languages, MACRO]


def to_dict(result: ExperimentResult, table_metrics: tuple[str, ...] | None = None, plot: str | None = None) -> dict[str, Any]:
    rows = []
    for r in result.results:
        sig: dict[str, Any] = {}
        if r.comparison is not None:
            for lang, per_metric in r.comparison.per_language.items():
                sig[lang] = {m: {"diff": e["diff"], "p_value": e["p_value"], "significant": e["significant"]} for m, e in per_metric.items()}
        rows.append({
            **r.setting.describe(),
            "per_language": r.report.per_language,
            "macro": r.report.macro,
            "vs_baseline": sig,
            "seconds": round(r.seconds, 3),
        })
    extra = []
    for title, pairs in result.extra_comparisons:
        for key, base, cmp in compare_pairs(result, pairs):
            extra.append({"title": title, "setting": key, "baseline": base, **cmp.to_dict()})
    return {
        "format": "xqg-experiment",
        "format_version": 1,
        "experiment": result.name,
        "title": result.title,
        "description": result.description,
        "settings": result.settings,
        "baseline": result.baseline,
        "languages": result.languages,
        "metrics": list(result.metrics),
        "table_metrics": list(table_metrics or result.metrics),
        "plot_metric": plot,
        "significance": {"test": "paired t-test (two-sided)", "alpha": result.significance_level,
                         "marks": {"*": "significantly higher than the baseline", "†": "significantly lower"}},
        "x_label": result.x_label,
        "notes": result.notes,
        "provenance": result.provenance,
        "results": rows,
        "extra_comparisons": extra,
    }


def per_query_dict(result: ExperimentResult) -> dict[str, Any]:
    """``{"qids", "langs", "settings": {key: {metric: [values aligned with qids]}}}``."""
    base = result.by_key(result.baseline).report
    qids = list(base.query_lang)
    for r in result.results:  # settings may cover other queries (own-language only, ...)
        for q in r.report.query_lang:
            if q not in base.query_lang:
                qids.append(q)
    qlang = {}
    for r in result.results:
        qlang.update(r.report.query_lang)
    settings = {}
    for r in result.results:
        settings[r.setting.key] = {
            m: [None if q not in vals else _compact(vals[q]) for q in qids]
            for m, vals in r.report.per_query.items()
        }
    return {"qids": qids, "langs": [qlang[q] for q in qids], "settings": settings}


def _compact(v: float) -> float | int:
    """0/1 metrics as ints, the rest rounded: per_query.json stays small."""
    f = float(v)
    return int(f) if f.is_integer() else round(f, 5)


def markdown(result: ExperimentResult, table_metrics: tuple[str, ...] | None = None) -> str:
    metrics = table_metrics or result.metrics
    cols = _cols(result)
    out = [f"## {result.title}", "", result.description, ""]
    for metric in metrics:
        out.append(f"### {metric}")
        out.append("")
        out.append("| series | setting | " + " | ".join(cols) + " |")
        out.append("|:---|:---|" + "|".join("---:" for _ in cols) + "|")
        for r in result.results:
            cells = []
            for lang in cols:
                v = value(r.report, lang, metric)
                mark = ""
                if r.comparison is not None and lang != MACRO:
                    mark = significance_marks(r.comparison.per_language.get(lang, {}).get(metric))
                cell = _pct(v) + mark
                if lang == MACRO and v is not None and _partial(result, r):
                    cell = f"({cell})"
                cells.append(cell)
            label = r.setting.label.replace("|", "\\|")
            base = " (baseline)" if r.setting.key == result.baseline else ""
            out.append(f"| {r.setting.series} | {label}{base} | " + " | ".join(cells) + " |")
        out.append("")
    for title, pairs in result.extra_comparisons:
        comps = compare_pairs(result, pairs)
        if not comps:
            continue
        out.append(f"### {title}")
        out.append("")
        out.append("| setting | metric | " + " | ".join(result.languages) + " |")
        out.append("|:---|:---|" + "|".join("---:" for _ in result.languages) + "|")
        for key, base, cmp in comps:
            label = result.by_key(key).setting.label
            for metric in metrics:
                cells = []
                for lang in result.languages:
                    e = cmp.per_language.get(lang, {}).get(metric)
                    cells.append("-" if e is None else f"{100 * e['diff']:+.1f}{significance_marks(e)}")
                out.append(f"| {label} | {metric} | " + " | ".join(cells) + " |")
        out.append("")
        out.append("(change in points against the paired setting)")
        out.append("")
    out.append(LEGEND.format(p=result.significance_level) + f"; baseline = {result.by_key(result.baseline).setting.label}"
               + ("; (x) = macro over fewer languages (the setting does not apply to all)." if any(_partial(result, r) for r in result.results) else "."))
    n = result.by_key(result.baseline).report.per_language
    out.append("Queries per language: " + ", ".join(f"{l} {int(n[l]['n'])}" for l in result.languages if l in n) + ".")
    if result.notes:
        out.append("")
        out += [f"- {note}" for note in result.notes]
    return "\n".join(out) + "\n"


def _partial(result: ExperimentResult, r: Any) -> bool:
    """True when a setting covers fewer query languages than the experiment (its macro is not comparable)."""
    return len(r.report.per_language) < len(result.languages)


def _series_points(result: ExperimentResult, metric: str, lang: str) -> dict[str, tuple[list[float], list[float], list[bool]]]:
    """series -> (x, y, significant) for one language (or macro). The baseline joins every series at its x."""
    base = result.by_key(result.baseline)
    out: dict[str, tuple[list[float], list[float], list[bool]]] = {}
    for series in result.series:
        if series == base.setting.series and len(result.series) > 1 and sum(r.setting.series == series for r in result.results) == 1:
            continue  # a lone baseline point is drawn as part of every other series
        pts = [r for r in result.results if r.setting.series == series]
        if base not in pts and all(r.setting.x != base.setting.x for r in pts):
            pts = [base, *pts]  # the series starts from the shared baseline
        xs, ys, sig = [], [], []
        for r in sorted(pts, key=lambda r: r.setting.x):
            v = value(r.report, lang, metric)
            if v is None or (lang == MACRO and _partial(result, r)):
                continue
            xs.append(r.setting.x)
            ys.append(100.0 * v)
            entry = r.comparison.per_language.get(lang, {}).get(metric) if (r.comparison is not None and lang != MACRO) else None
            sig.append(bool(entry and entry.get("significant")))
        if xs:
            out[series] = (xs, ys, sig)
    return out


def _x_ticks(result: ExperimentResult) -> tuple[list[float], list[str]]:
    xs = sorted({r.setting.x for r in result.results})
    return xs, [f"{x:g}" for x in xs]


def write_png(result: ExperimentResult, path: Path, metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    panels = _cols(result)
    ncols = min(3, len(panels))
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
    xs_all, labels = _x_ticks(result)
    pos = {x: i for i, x in enumerate(xs_all)}
    for ax, lang in zip(axes.flat, panels):
        for series, (xs, ys, sig) in _series_points(result, metric, lang).items():
            px = [pos[x] for x in xs] if result.x_categorical else xs
            lone = len(xs) == 2  # baseline + one point (own language only): make it visible over the other lines
            line, = ax.plot(px, ys, marker="D" if lone else "o", markersize=6 if lone else 3, label=series,
                            zorder=4 if lone else 2, linestyle=":" if lone else "-")
            sx = [x for x, s in zip(px, sig) if s]
            sy = [y for y, s in zip(ys, sig) if s]
            if sx:
                ax.scatter(sx, sy, marker="*", s=70, color=line.get_color(), zorder=3)
        ax.set_title("macro average" if lang == MACRO else f"queries: {lang}")
        ax.set_xlabel(result.x_label)
        ax.set_ylabel(f"{metric} (%)")
        if result.x_categorical:
            ax.set_xticks(range(len(xs_all)), labels, rotation=45)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(4, max(1, len(names))), fontsize=8, frameon=False)
    fig.suptitle(f"{result.title}: {metric} (stars: p < {result.significance_level:g} vs baseline)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def terminal_plot(result: ExperimentResult, metric: str, width: int = 78, height: int = 20, color: bool = True) -> str:
    """The macro-average curves as a plotext chart (a string)."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    if not color:
        plt.theme("clear")
    xs_all, labels = _x_ticks(result)
    pos = {x: i for i, x in enumerate(xs_all)}
    markers = ["dot", "x", "+", "o", "*", "@"]
    for i, (series, (xs, ys, _)) in enumerate(_series_points(result, metric, MACRO).items()):
        px = [pos[x] for x in xs] if result.x_categorical else xs
        plt.plot(px, ys, label=series, marker=markers[i % len(markers)])
    if result.x_categorical:
        plt.xticks(list(range(len(xs_all))), labels)
    elif len(xs_all) <= 12:
        plt.xticks(xs_all, labels)
    plt.title(f"{result.title}: macro {metric} (%)")
    plt.xlabel(result.x_label)
    text = plt.build()
    plt.clear_figure()
    return text if color else _ANSI.sub("", text)


def write_outputs(result: ExperimentResult, out_dir: Path, table_metrics: tuple[str, ...] | None = None,
                  plot: str | None = None, png: bool = True) -> dict[str, Path]:
    """Write every rendering into ``out_dir``; returns the paths by kind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metric = plot or plot_metric(result.metrics)
    md = markdown(result, table_metrics)
    paths = {"markdown": out_dir / "results.md", "json": out_dir / "result.json", "per_query": out_dir / "per_query.json"}
    atomic_write_text(paths["markdown"], md)
    atomic_write_bytes(paths["per_query"], json.dumps(per_query_dict(result), ensure_ascii=False, separators=(",", ":")).encode())
    data = to_dict(result, table_metrics, metric)
    data["per_query_file"] = {"path": "per_query.json", "sha256": sha256_file(paths["per_query"])}
    data["markdown"] = md
    atomic_write_text(paths["json"], json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    if png:
        paths["png"] = out_dir / "plot.png"
        write_png(result, paths["png"], metric)
    paths["terminal_plot"] = out_dir / "plot.txt"
    atomic_write_text(paths["terminal_plot"], terminal_plot(result, metric, color=False) + "\n")
    return paths


def load_result(folder: str | Path) -> ExperimentResult:
    """Rebuild an :class:`ExperimentResult` from ``result.json`` + ``per_query.json``
    (comparisons are recomputed from the per-query values), to re-render saved results."""
    from ..errors import XQGError
    from ..evaluation.report import EvalReport
    from .core import Setting, SettingResult, attach_comparisons

    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    try:
        data = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        pq = json.loads((folder / "per_query.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise XQGError(f"{folder}: no experiment result here ({Path(exc.filename).name} missing)") from None
    except json.JSONDecodeError as exc:
        raise XQGError(f"{folder}: damaged result file ({exc.msg})") from None
    if data.get("format") != "xqg-experiment":
        raise XQGError(f"{folder}/result.json: not an xqg experiment result")
    qids, langs = pq["qids"], pq["langs"]
    results = []
    for row in data["results"]:
        values = pq["settings"][row["key"]]
        per_query = {m: {q: float(v) for q, v in zip(qids, vals) if v is not None} for m, vals in values.items()}
        covered = {q for vals in per_query.values() for q in vals}
        query_lang = {q: l for q, l in zip(qids, langs) if q in covered and l in row["per_language"]}
        metrics = tuple(m for m in data["metrics"] if m in per_query)
        report = EvalReport(metrics, row["per_language"], row["macro"], per_query, query_lang, {})
        setting = Setting(row["key"], row["series"], row["x"], row["label"], [], row.get("params", {}), row.get("variants"))
        results.append(SettingResult(setting, report, None, row.get("seconds", 0.0)))
    attach_comparisons(results, data["baseline"])
    extra: dict[str, list[tuple[str, str]]] = {}
    for e in data.get("extra_comparisons", []):
        extra.setdefault(e["title"], []).append((e["setting"], e["baseline"]))
    return ExperimentResult(
        name=data["experiment"], title=data["title"], description=data["description"], baseline=data["baseline"],
        results=results, languages=data["languages"], metrics=tuple(data["metrics"]), settings=data["settings"],
        provenance=data["provenance"], x_label=data.get("x_label", ""),
        x_categorical=data["experiment"] == "alpha", notes=data.get("notes", []),
        extra_comparisons=list(extra.items()), significance_level=data["significance"]["alpha"],
    )
