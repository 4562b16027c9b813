"""Turning evaluation dictionaries into table rows and Markdown for the app.

The engine's ``EvalReport`` / ``Comparison`` own the numbers; these helpers only
read their ``to_dict()`` output (or an experiment results JSON) for display.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any

METRIC_ORDER = ("R@2kt", "R@5kt", "Recall@1", "Recall@5", "Recall@10", "MRR@10", "nDCG@10")
CELL_KEYS = ("base", "other", "diff", "p_value", "significant")


def comparison_rows(comparison: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """{row (language or "macro"): {metric: {"base", "other", "diff", "p_value", "significant"}}}.

    Accepts ``{"per_language": {...}, "macro": {...}}`` or a flat ``{lang: {...}}``."""
    if "per_language" in comparison:
        rows = dict(comparison["per_language"])
        if isinstance(comparison.get("macro"), dict):
            rows["macro"] = comparison["macro"]
    else:
        rows = {k: v for k, v in comparison.items() if isinstance(v, dict)}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row, metrics in rows.items():
        cells = {m: v for m, v in metrics.items() if isinstance(v, dict) and ("base" in v or "other" in v)}
        if cells:
            out[str(row)] = cells
    # macro last, languages in their given order
    if "macro" in out:
        out["macro"] = out.pop("macro")
    return out


def metrics_of(rows: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    seen: list[str] = []
    for cells in rows.values():
        for m in cells:
            if m not in seen:
                seen.append(m)
    known = [m for m in METRIC_ORDER if m in seen]
    return known + [m for m in seen if m not in known]


def fmt_num(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, (int, float)):
        if v != v:  # NaN: not enough queries for a test
            return "–"
        return f"{v:.{digits}f}"
    return str(v)


def fmt_p(p: Any) -> str:
    if not isinstance(p, (int, float)) or p != p:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def comparison_markdown(comparison: dict[str, Any], metrics: list[str] | None = None) -> str:
    """One row per language, ``plain → xQG (Δ, p)`` per metric; * = significant."""
    rows = comparison_rows(comparison)
    metrics = metrics or metrics_of(rows)
    head = "| language | " + " | ".join(metrics) + " |"
    sep = "|---|" + "---|" * len(metrics)
    lines = [head, sep]
    for row, cells in rows.items():
        parts = []
        for m in metrics:
            c = cells.get(m)
            if c is None:
                parts.append("")
                continue
            star = "*" if c.get("significant") else ""
            diff = c.get("diff")
            sign = "+" if isinstance(diff, (int, float)) and diff >= 0 else ""
            parts.append(f"{fmt_num(c.get('base'))} → {fmt_num(c.get('other'))}{star} ({sign}{fmt_num(diff)}, p {fmt_p(c.get('p_value'))})")
        name = f"**{row}**" if row == "macro" else row
        lines.append(f"| {name} | " + " | ".join(parts) + " |")
    lines.append("")
    lines.append("plain → xQG (difference, paired t-test p-value); * = significant")
    return "\n".join(lines)


def comparison_csv(comparison: dict[str, Any]) -> str:
    rows = comparison_rows(comparison)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["language", "metric", "plain", "xqg", "diff", "p_value", "significant"])
    for row, cells in rows.items():
        for m in metrics_of({row: cells}):
            c = cells[m]
            w.writerow([row, m, c.get("base"), c.get("other"), c.get("diff"), c.get("p_value"), bool(c.get("significant"))])
    return buf.getvalue()


def _flat_table(items: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for it in items:
        for k, v in it.items():
            if k not in keys and not isinstance(v, (dict, list)):
                keys.append(k)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for it in items:
        lines.append("| " + " | ".join(fmt_num(it.get(k), 4) if isinstance(it.get(k), float) else str(it.get(k, "")) for k in keys) + " |")
    return "\n".join(lines)


def results_markdown(data: Any, title: str = "") -> str:
    """Markdown for a results JSON (``xqg experiment``, an exported evaluation, or anything)."""
    head = f"# {title}\n\n" if title else ""
    if isinstance(data, dict):
        for key in ("markdown", "table_markdown", "table"):
            if isinstance(data.get(key), str) and data[key].strip():
                return head + data[key]
        for key in ("comparison", "compare"):
            if isinstance(data.get(key), dict) and comparison_rows(data[key]):
                return head + comparison_markdown(data[key])
        if comparison_rows(data):
            return head + comparison_markdown(data)
        for key in ("rows", "results", "runs"):
            items = data.get(key)
            if isinstance(items, list) and items and all(isinstance(i, dict) for i in items):
                return head + _flat_table(items)
    if isinstance(data, list) and data and all(isinstance(i, dict) for i in data):
        return head + _flat_table(data)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if len(text) > 20000:
        text = text[:20000] + "\n…"
    return head + "```json\n" + text + "\n```"
