"""Printing the suite's lines, the JSON file and ``docs/performance.md``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from .common import Result


def fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    ax = abs(x)
    if ax == 0:
        s = "0"
    elif ax >= 1000:
        s = f"{x:,.0f}"
    elif ax >= 100:
        s = f"{x:.0f}"
    elif ax >= 10:
        s = f"{x:.1f}"
    elif ax >= 1:
        s = f"{x:.2f}"
    elif ax >= 0.01:
        s = f"{x:.3f}"
    else:
        s = f"{x:.2e}"
    return s


def fmt_unit(x: float | None, unit: str) -> str:
    """``fmt`` with enough digits for figures close to 1 (cosines, recalls)."""
    if x is not None and unit == "cosine":
        return f"{x:.5f}"
    if x is not None and unit in ("recall@10", "fraction"):
        return f"{x:.3f}"
    return fmt(x)


def with_unit(x: float | None, unit: str) -> str:
    return "-" if x is None else f"{fmt_unit(x, unit)} {unit}"


def met_text(r: Result) -> str:
    return {True: "yes", False: "NO", None: "-"}[r.met]


def line(r: Result) -> str:
    ratio = fmt(r.ratio)
    return (
        f"{r.name:<28} ours {fmt_unit(r.ours, r.unit):>10} {r.unit:<12} baseline {fmt_unit(r.baseline, r.unit):>10} "
        f"({r.baseline_name})"
        f"  ratio {ratio:>7}  target {r.target_text():<16} met {met_text(r)}"
    )


def write_json(path: Path, machine: dict[str, Any], results: Sequence[Result], meta: dict[str, Any]) -> None:
    data = {"machine": machine, "meta": meta, "results": [r.to_json() for r in results]}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def markdown_table(results: Sequence[Result]) -> str:
    rows = ["| measurement | ours | baseline | baseline is | ratio | target | met |", "|---|---:|---:|---|---:|---|---|"]
    for r in results:
        rows.append(
            f"| `{r.name}` | {with_unit(r.ours, r.unit)} | {with_unit(r.baseline, r.unit)} "
            f"| {r.baseline_name} | {fmt(r.ratio)} "
            f"| {r.target_text()} | {met_text(r)} |"
        )
    return "\n".join(rows)


def notes_table(results: Sequence[Result]) -> str:
    out = []
    for r in results:
        if r.note:
            out.append(f"* `{r.name}`: {r.note}")
    return "\n".join(out)


def results_from_json(path: Path) -> tuple[dict[str, Any], dict[str, Any], list[Result]]:
    """(machine, meta, results) of a file written by :func:`write_json`."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    results = []
    for row in data["results"]:
        results.append(Result(
            name=row["name"], ours=row.get("ours"), baseline=row.get("baseline"),
            baseline_name=row.get("baseline_name", ""), unit=row.get("unit", ""), better=row.get("better", "lower"),
            target=row.get("target"), target_on=row.get("target_on", "ratio"), note=row.get("note", ""),
            extra=row.get("extra") or {},
        ))
    return data.get("machine", {}), data.get("meta", {}), results
