"""A sweep of alpha, the weight of the generated queries, for one or both fusions.

The paper's alpha = 0.01 with ``sum`` fusion fits an un-normalised mBERT whose
vectors have large norms; unit-length encoders (E5) need far larger values, and
``sum`` over unequal numbers of queries per passage biases towards passages with
more queries. This experiment measures both.
"""
from __future__ import annotations

import argparse
from typing import Any

from ..errors import XQGError
from ..index.format import FUSIONS
from ..languages import parse_lang_list
from .base import Experiment, Inputs, parse_float_list
from .core import ALL, Context, Setting
from .registry import register

DEFAULT_ALPHAS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


@register
class AlphaExperiment(Experiment):
    name = "alpha"
    title = "Alpha sweep"
    help = "recall as alpha (the weight of the generated queries) varies, for sum and mean fusion"
    x_label = "alpha"
    x_categorical = True

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--alphas", default=",".join(f"{a:g}" for a in DEFAULT_ALPHAS), help="alpha values (default: %(default)s)")
        parser.add_argument("--fusions", default=None, help="fusions to sweep, comma separated (default: sum,mean; --fusion picks one)")
        parser.add_argument("--langs", default=None, help="generation languages to fuse (default: the index's)")
        parser.add_argument("--queries-per-lang", "-n", dest="n", type=int, default=None)

    @classmethod
    def options_from_args(cls, args: argparse.Namespace) -> dict[str, Any]:
        return {"alphas": args.alphas, "fusions": args.fusions, "langs": args.langs, "n": args.n}

    def description(self, index: Any) -> str:
        return ("Recall as alpha, the weight of the generated-query vectors in (1 - alpha) * p + alpha * q, varies; "
                "alpha = 0 is plain dense retrieval. `sum` adds every generated query vector (the paper), `mean` "
                "averages each language's vectors first.")

    def build_settings(self, searcher: Any, ctx: Context, inputs: Inputs) -> tuple[list[Setting], str, list[str]]:
        index = searcher.index
        if not index.langs:
            raise XQGError("the index has no generated queries: build it with --generator or --import-generated")
        alphas = parse_float_list(self.options.get("alphas") or ",".join(map(str, DEFAULT_ALPHAS)))
        if inputs.alpha is not None:
            alphas.append(inputs.alpha)
        if any(not 0.0 <= a <= 1.0 for a in alphas):
            raise XQGError("alpha values must lie in [0, 1]")
        alphas = sorted(set(alphas) | {0.0})
        fusions_opt = self.options.get("fusions")
        if fusions_opt:
            fusions = [f.strip() for f in str(fusions_opt).split(",") if f.strip()]
        elif inputs.fusion:
            fusions = [inputs.fusion]
        else:
            fusions = list(FUSIONS)
        bad = [f for f in fusions if f not in FUSIONS]
        if bad:
            raise XQGError(f"unknown fusion {', '.join(bad)}; use {', '.join(FUSIONS)}")
        langs = parse_lang_list(self.options["langs"], tuple(index.langs)) if self.options.get("langs") else None
        n = self.options.get("n")
        settings = [Setting("alpha:0", "no xQG", 0.0, "alpha = 0 (plain)", [{ALL: None}])]
        for fusion in fusions:
            for a in alphas:
                if a == 0.0:
                    continue
                spec = searcher.spec(alpha=a, fusion=fusion, langs=langs, n=n)
                settings.append(Setting(f"{fusion}:{a:g}", f"{fusion} fusion", a, f"{fusion}, alpha = {a:g}", [{ALL: spec}]))
        chosen = searcher.spec(langs=langs, n=n)
        notes = [f"languages: {', '.join(chosen.langs)}; queries per language: {'all' if n is None else n}; "
                 f"the index's default: {chosen.fusion}, alpha {chosen.alpha:g}"]
        return settings, "alpha:0", notes
