"""Recall as the number of generated queries per language grows (n = 0 .. N)."""
from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..errors import XQGError
from ..languages import parse_lang_list
from .base import Experiment, Inputs, parse_int_list
from .core import ALL, Context, Setting
from .registry import register


@register
class QueriesPerLangExperiment(Experiment):
    name = "queries-per-lang"
    title = "Generated queries per language"
    help = "recall as the number of generated queries per language grows (n = 0 .. N)"
    x_label = "generated queries per language (n)"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--langs", default=None, help="generation languages to fuse (default: the index's)")
        parser.add_argument("--n-values", default=None, help="values of n, comma separated (default: 0 .. the most any passage has)")

    @classmethod
    def options_from_args(cls, args: argparse.Namespace) -> dict[str, Any]:
        return {"langs": args.langs, "n_values": args.n_values}

    def description(self, index: Any) -> str:
        return ("Recall as the number of generated queries per language fused into the passage vectors grows, "
                "from n = 0 (plain dense retrieval) to every stored query; all chosen languages at once.")

    def build_settings(self, searcher: Any, ctx: Context, inputs: Inputs) -> tuple[list[Setting], str, list[str]]:
        index = searcher.index
        if not index.langs:
            raise XQGError("the index has no generated queries: build it with --generator or --import-generated")
        langs = parse_lang_list(self.options["langs"], tuple(index.langs)) if self.options.get("langs") else None
        nmax = max(int(np.max(c)) if len(c) else 0 for c in index.query_counts.values())
        values = parse_int_list(self.options["n_values"]) if self.options.get("n_values") else list(range(nmax + 1))
        if any(v < 0 for v in values):
            raise XQGError("--n-values must be >= 0")
        values = sorted(set(values) | {0})
        notes = []
        if values[-1] > nmax:
            notes.append(f"the index stores at most {nmax} queries per language: larger n equals n = {nmax}")
        base_spec = searcher.spec(alpha=inputs.alpha, fusion=inputs.fusion, langs=langs)
        if base_spec.alpha == 0.0:
            raise XQGError("alpha is 0: every setting would be plain retrieval; give --alpha")
        series = f"{base_spec.fusion} fusion, alpha {base_spec.alpha:g}"
        settings = [Setting("n:0", series, 0, "n = 0 (plain)", [{ALL: None}])]
        for v in values:
            if v == 0:
                continue
            spec = searcher.spec(alpha=inputs.alpha, fusion=inputs.fusion, langs=langs, n=v)
            settings.append(Setting(f"n:{v}", series, v, f"n = {v}", [{ALL: spec}]))
        notes.append(f"languages: {', '.join(base_spec.langs)}; alpha {base_spec.alpha:g}, fusion {base_spec.fusion}")
        return settings, "n:0", notes
