"""Recall per query language as the set of generation languages grows (0 to all).

Series (all share the 0-language baseline, plain dense retrieval):

* ``own language only``: each query language fused with its own language's
  generated queries (absent for query languages the index did not generate);
* ``growing, fixed order``: the first k languages of a fixed order -- the
  index's language order, which is the paper's ``ar, bn, fi, ja, ko, ru, te``
  for an index built with the default languages (``--order`` overrides);
* ``growing, own language first``: the same order with the query's own language
  moved to the front (k = 1 is then the own-language setting);
* ``mean of random subsets``: for each size k, the per-query mean over up to
  ``--subsets`` random k-subsets (seeded; every subset when there are few).

Together they show whether other languages' generated queries help a query,
beyond the ones in its own language.
"""
from __future__ import annotations

import argparse
import itertools
import math
import random
from typing import Any

from ..errors import XQGError
from ..languages import normalize_code, parse_lang_list
from .base import Experiment, Inputs
from .core import ALL, Context, Setting
from .registry import register

SERIES = ("own", "order", "own-first", "random")


def random_subsets(langs: list[str], size: int, count: int, rng: random.Random) -> list[tuple[str, ...]]:
    """Up to ``count`` distinct ``size``-subsets of ``langs`` (all of them when there are
    that few), each in ``langs`` order; the same seed gives the same subsets."""
    total = math.comb(len(langs), size)
    if total <= count:
        return [tuple(c) for c in itertools.combinations(langs, size)]
    chosen: set[tuple[str, ...]] = set()
    out: list[tuple[str, ...]] = []
    while len(out) < count:
        pick = tuple(sorted(rng.sample(langs, size), key=langs.index))
        if pick not in chosen:
            chosen.add(pick)
            out.append(pick)
    return out


@register
class LanguagesExperiment(Experiment):
    name = "languages"
    title = "Generation languages"
    help = "recall per query language as the set of xQG generation languages grows (0 to all)"
    x_label = "generation languages fused"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--langs", default=None, help="generation languages to use (default: all in the index)")
        parser.add_argument("--order", default=None, help="fixed order of the growing series (default: the index's, i.e. the paper's ar,bn,fi,ja,ko,ru,te)")
        parser.add_argument("--subsets", type=int, default=10, help="random subsets per size (default 10)")
        parser.add_argument("--series", default=",".join(SERIES), help=f"which series to compute (default: {','.join(SERIES)})")
        parser.add_argument("--queries-per-lang", "-n", dest="n", type=int, default=None, help="generated queries per language (default: all)")

    @classmethod
    def options_from_args(cls, args: argparse.Namespace) -> dict[str, Any]:
        return {"langs": args.langs, "order": args.order, "subsets": args.subsets, "series": args.series, "n": args.n}

    def description(self, index: Any) -> str:
        return ("Recall per query language as the set of generation languages fused into the passage vectors grows, "
                "from 0 (plain dense retrieval) to all; own language only, growing in a fixed order "
                f"({', '.join(self._order(index))}), growing with the query's own language first, and the mean over "
                f"random subsets of each size (up to {self.options.get('subsets', 10)} per size, seeded).")

    def _langs(self, index: Any) -> list[str]:
        langs = list(index.langs)
        if self.options.get("langs"):
            chosen = parse_lang_list(self.options["langs"], tuple(langs))
            unknown = [l for l in chosen if l not in langs]
            if unknown:
                raise XQGError(f"the index has no generated queries in {', '.join(unknown)} (it has: {', '.join(langs) or 'none'})")
            langs = chosen
        if not langs:
            raise XQGError("the index has no generated queries: build it with --generator or --import-generated")
        return langs

    def _order(self, index: Any) -> list[str]:
        langs = self._langs(index)
        if not self.options.get("order"):
            return langs
        order = [normalize_code(l) for l in str(self.options["order"]).split(",") if l.strip()]
        if sorted(order) != sorted(langs):
            raise XQGError(f"--order must list exactly the languages used ({', '.join(langs)}), got {', '.join(order)}")
        return order

    def build_settings(self, searcher: Any, ctx: Context, inputs: Inputs) -> tuple[list[Setting], str, list[str]]:
        series = [s.strip() for s in str(self.options.get("series") or ",".join(SERIES)).split(",") if s.strip()]
        bad = [s for s in series if s not in SERIES]
        if bad:
            raise XQGError(f"unknown series {', '.join(bad)}; choose from {', '.join(SERIES)}")
        order = self._order(searcher.index)
        n = self.options.get("n")
        subsets = int(self.options.get("subsets") or 10)
        if subsets < 1:
            raise XQGError("--subsets must be >= 1")

        def spec(langs: tuple[str, ...] | list[str]):
            return searcher.spec(alpha=inputs.alpha, fusion=inputs.fusion, langs=list(langs), n=n)

        if spec(order).alpha == 0.0:
            raise XQGError("alpha is 0: every setting would be plain retrieval; give --alpha")
        settings = [Setting("none", "no xQG", 0, "0 languages (plain)", [{ALL: None}])]
        notes: list[str] = []
        if "own" in series:
            own = {q: spec([q]) for q in ctx.langs if q in order}
            missing = [q for q in ctx.langs if q not in order]
            if own:
                settings.append(Setting("own", "own language only", 1, "own language", [own]))
            if missing:
                notes.append(f"query languages without generated queries of their own: {', '.join(missing)} "
                             "(no own-language value; the own-first series uses the fixed order for them)")
        k_max = len(order)
        if "order" in series:
            for k in range(1, k_max + 1):
                settings.append(Setting(f"order:{k}", "growing, fixed order", k, f"{k}: {','.join(order[:k])}", [{ALL: spec(order[:k])}]))
        if "own-first" in series:
            for k in range(1, k_max + 1):
                var = {}
                for q in ctx.langs:
                    o = [q] + [l for l in order if l != q] if q in order else order
                    var[q] = spec(o[:k])
                settings.append(Setting(f"own-first:{k}", "growing, own language first", k, f"{k}: own + {k - 1} in order", [var]))
        if "random" in series:
            rng = random.Random(inputs.seed)
            for k in range(1, k_max + 1):
                picks = random_subsets(order, k, subsets, rng)
                settings.append(Setting(
                    f"random:{k}", "mean of random subsets", k, f"{k}: mean of {len(picks)} subsets",
                    [{ALL: spec(p)} for p in picks], params={"subsets": [list(p) for p in picks]},
                ))
        notes.append(f"fixed order: {', '.join(order)}; alpha {spec(order).alpha:g}, fusion {spec(order).fusion}, "
                     f"queries per language: {'all' if n is None else n}")
        return settings, "none", notes
