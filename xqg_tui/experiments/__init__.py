"""The scaling experiments: how retrieval changes with the number of generation
languages, generated queries per language, alpha, and fine-tuning data.

    from xqg_tui.experiments import Inputs, run_experiment
    result, paths = run_experiment("languages", Inputs.make("idx", ["q.ar.jsonl", "q.ru.jsonl"], ["qrels.trec"]), out="res")

Each experiment computes an :class:`ExperimentResult` (``core.py``) that
``render.py`` writes as JSON, Markdown, a PNG and a terminal plot.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Experiment, Inputs
from .core import Context, ExperimentResult, Setting, SettingResult
from .registry import EXPERIMENTS, get_experiment, list_experiments, register


def run_experiment(name: str, inputs: Inputs, out: str | Path | None = None, progress: Any = None,
                   table_metrics: tuple[str, ...] | None = None, plot: str | None = None, png: bool = True,
                   **options: Any) -> tuple[ExperimentResult, dict[str, Path]]:
    """Run experiment ``name`` and (when ``out`` is given) write its renderings there."""
    from .core import pick_metrics, plot_metric
    from .render import write_outputs

    cls = get_experiment(name)
    if out is not None:
        options.setdefault("out", str(out))
    result = cls(**options).run(inputs, progress)
    paths: dict[str, Path] = {}
    if out is not None:
        metrics = pick_metrics(result.metrics, table_metrics)
        paths = write_outputs(result, Path(out), metrics, plot_metric(result.metrics, plot), png=png)
    return result, paths


__all__ = [
    "EXPERIMENTS",
    "Context",
    "Experiment",
    "ExperimentResult",
    "Inputs",
    "Setting",
    "SettingResult",
    "get_experiment",
    "list_experiments",
    "register",
    "run_experiment",
]
