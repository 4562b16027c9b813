"""The experiment interface and the shared driver of the vector-only experiments."""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import XQGError
from ..index.format import FUSIONS
from .core import Context, ExperimentResult, Progress, Setting, load_qrels, load_queries, run_settings, split_file_args
from .provenance import now_iso, provenance


@dataclass
class Inputs:
    """What every experiment reads: an index, queries (one file per language) and qrels."""

    index: Path
    queries: list[tuple[str | None, Path]]
    qrels: list[Path] = field(default_factory=list)
    k: int = 100
    seed: int = 0
    alpha: float | None = None
    fusion: str | None = None
    encoder: Any = None  # a loaded encoder for the queries (default: the index's own)
    query_cache: Path | None = None  # folder keeping encoded queries between experiments

    @classmethod
    def make(cls, index: str | Path, queries: Sequence[str | Path] | str | Path, qrels: Sequence[str | Path] | str | Path | None = None,
             **kw: Any) -> "Inputs":
        qs = [queries] if isinstance(queries, (str, Path)) else list(queries)
        qr = [] if qrels is None else [qrels] if isinstance(qrels, (str, Path)) else list(qrels)
        files = [str(q) for q in qs]
        rels: list[Path] = []
        for r in qr:
            rels += [Path(x) for x in str(r).split(",") if x.strip()]
        return cls(Path(index), split_file_args(files), rels, **kw)


class Experiment:
    """One scaling experiment. Subclasses set ``name``/``title``/``help`` and build settings."""

    name: str = ""
    title: str = ""
    help: str = ""
    x_label: str = ""
    x_categorical: bool = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    # ---- CLI -------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Experiment-specific flags (the common ones are added by the CLI)."""

    @classmethod
    def options_from_args(cls, args: argparse.Namespace) -> dict[str, Any]:
        return {}

    # ---- core ------------------------------------------------------------------------
    def description(self, index: Any) -> str:
        return self.help

    def build_settings(self, searcher: Any, ctx: Context, inputs: Inputs) -> tuple[list[Setting], str, list[str]]:
        """(settings, baseline key, notes)."""
        raise NotImplementedError

    def run(self, inputs: Inputs, progress: Progress | None = None) -> ExperimentResult:
        from ..search import Searcher

        started, t0 = now_iso(), time.perf_counter()
        if inputs.fusion is not None and inputs.fusion not in FUSIONS:
            raise XQGError(f"--fusion must be one of {', '.join(FUSIONS)}")
        searcher = Searcher.open(inputs.index, encoder=inputs.encoder)
        queries, original = load_queries(inputs.queries)
        qrels = load_qrels(inputs.qrels, original)
        if progress:
            progress(f"encoding {len(queries)} queries once")
        ctx = Context(searcher, queries, qrels, k=inputs.k, query_cache=inputs.query_cache)
        settings, baseline, notes = self.build_settings(searcher, ctx, inputs)
        results = run_settings(ctx, settings, baseline, progress)
        metrics = results[0].report.metrics
        if searcher.index.langs and not searcher.index.manifest["generation"].get("equal_counts", True):
            notes = notes + ["passages have different numbers of generated queries: `sum` fusion gives passages with "
                             "more queries a larger common component (it favours them whatever the query); `mean` does not"]
        data_files = [p for _, p in inputs.queries] + list(inputs.qrels)
        return ExperimentResult(
            name=self.name,
            title=self.title,
            description=self.description(searcher.index),
            baseline=baseline,
            results=results,
            languages=ctx.langs,
            metrics=metrics,
            settings=self.settings_record(inputs, searcher),
            provenance=provenance(
                searcher.index, data_files, inputs.seed, started, time.perf_counter() - t0,
                {"query_encode_seconds": round(ctx.encode_seconds, 2), "query_vectors_from_cache": ctx.query_cache_hit, "qid_renamed": any(k != v for k, v in original.items())},
            ),
            x_label=self.x_label,
            x_categorical=self.x_categorical,
            notes=notes,
        )

    def settings_record(self, inputs: Inputs, searcher: Any) -> dict[str, Any]:
        return {
            "experiment": self.name,
            "index": str(inputs.index),
            "queries": [{"lang": l, "path": str(p)} for l, p in inputs.queries],
            "qrels": [str(p) for p in inputs.qrels],
            "k": inputs.k,
            "seed": inputs.seed,
            "alpha": inputs.alpha if inputs.alpha is not None else searcher.index.search_defaults.get("alpha"),
            "fusion": inputs.fusion or searcher.index.search_defaults.get("fusion"),
            "index_langs": list(searcher.index.langs),
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in self.options.items()},
        }


def parse_float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise XQGError(f"expected comma-separated numbers, got {text!r}") from None


def parse_int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise XQGError(f"expected comma-separated integers, got {text!r}") from None

