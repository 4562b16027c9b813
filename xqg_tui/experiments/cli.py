"""``xqg experiment ...``: the scaling experiments and their data preparation."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import XQGError


def default_out(name: str) -> Path:
    """docs/results/NAME inside the project tree, else ./xqg-results/NAME."""
    docs = Path("docs") / "results"
    return docs / name if docs.is_dir() else Path("xqg-results") / name


def _add_common(p: argparse.ArgumentParser, finetune: bool = False) -> None:
    p.add_argument("--index", required=True, help="index folder")
    p.add_argument("--queries", action="append", default=None, metavar="FILE",
                   help="queries (XOR-TyDi JSONL or LANG=TSV); repeatable or comma separated, one file per language")
    p.add_argument("--qrels", action="append", default=None, metavar="FILE", help="TREC qrels (repeatable)")
    p.add_argument("--out", default=None, help="output folder (default: docs/results/NAME or ./xqg-results/NAME)")
    p.add_argument("--k", type=int, default=100, help="passages retrieved per query (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=None, help="fusion weight (default: the index's)")
    p.add_argument("--fusion", choices=["sum", "mean"], default=None, help="fusion (default: the index's)")
    p.add_argument("--query-cache", default=None, metavar="DIR",
                   help="keep the encoded queries here and reuse them in later experiments (keyed by encoder and texts)")
    p.add_argument("--metrics", default=None, help="metrics in the Markdown tables (default: R@2kt,R@5kt,Recall@1,MRR@10 when computed)")
    p.add_argument("--plot-metric", default=None, help="metric plotted (default: MRR@10, else R@2kt)")
    p.add_argument("--no-png", action="store_true", help="skip the PNG plot")
    p.add_argument("--no-plot", action="store_true", help="do not print the terminal plot")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print the result JSON instead of the table")


def cmd_experiment(args: argparse.Namespace) -> int:
    from . import Inputs, run_experiment
    from .core import pick_metrics, plot_metric, split_file_args
    from .registry import get_experiment
    from .render import terminal_plot

    cls = get_experiment(args.experiment)
    files = list(args.queries or []) + list(getattr(args, "eval_queries", None) or [])
    if not files:
        raise XQGError("give the evaluation queries with --queries FILE (repeatable)")
    qrels = [Path(x) for v in (args.qrels or []) for x in str(v).split(",") if x.strip()]
    inputs = Inputs(Path(args.index), split_file_args(files), qrels, k=args.k, seed=args.seed, alpha=args.alpha, fusion=args.fusion,
                    query_cache=Path(args.query_cache) if args.query_cache else None)
    out = Path(args.out) if args.out else default_out(args.experiment)
    options = cls.options_from_args(args)

    def progress(msg: str) -> None:
        if not args.quiet and not args.json:
            print(f"xqg experiment {args.experiment}: {msg}", file=sys.stderr, flush=True)

    wanted = tuple(m.strip() for m in args.metrics.split(",")) if args.metrics else None
    result, paths = run_experiment(args.experiment, inputs, out=out, progress=progress, table_metrics=wanted,
                                   plot=args.plot_metric, png=not args.no_png, **options)
    if args.json:
        data = json.loads(paths["json"].read_text(encoding="utf-8"))
        data["files"] = {k: str(v) for k, v in paths.items()}
        print(json.dumps(data, ensure_ascii=False))
        return 0
    print(paths["markdown"].read_text(encoding="utf-8"))
    if not args.no_plot:
        print(terminal_plot(result, plot_metric(result.metrics, args.plot_metric), color=sys.stdout.isatty()))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def cmd_xquad_split(args: argparse.Namespace) -> int:
    from .data import xquad_split

    split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    summary = xquad_split(args.xquad, args.out, split(args.query_langs), split(args.gen_langs),
                          split(args.train_langs) if args.train_langs else None, args.train_fraction, args.seed, args.negatives)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(f"wrote {args.out}: {len(summary['articles']['train'])} train / {len(summary['articles']['eval'])} eval articles, "
              f"{summary['train_examples']} training examples, test queries {summary['queries']['test']}, eval queries {summary['queries']['eval']}")
    return 0


def cmd_xor_translations(args: argparse.Namespace) -> int:
    from .data import xor_translations

    summary = xor_translations(args.root, args.out, [x.strip() for x in args.langs.split(",") if x.strip()], args.per_lang, args.seed)
    print(json.dumps(summary, ensure_ascii=False) if args.json else f"wrote {args.out}: {summary['examples']} pairs {summary['per_lang']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from ..io.atomic import atomic_write_text
    from .core import pick_metrics, plot_metric
    from .render import load_result, markdown, terminal_plot, write_png

    result = load_result(args.result)
    folder = Path(args.result) if Path(args.result).is_dir() else Path(args.result).parent
    saved = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    wanted = tuple(m.strip() for m in args.metrics.split(",")) if args.metrics else tuple(saved.get("table_metrics") or ())
    metrics = pick_metrics(result.metrics, wanted or None)
    metric = plot_metric(result.metrics, args.plot_metric or saved.get("plot_metric"))
    md = markdown(result, metrics)
    if args.write:
        # Only the renderings change; the computed values and provenance in result.json stay as they were.
        atomic_write_text(folder / "results.md", md)
        atomic_write_text(folder / "plot.txt", terminal_plot(result, metric, color=False) + "\n")
        if not args.no_png:
            write_png(result, folder / "plot.png", metric)
        saved.update(markdown=md, table_metrics=list(metrics), plot_metric=metric)
        atomic_write_text(folder / "result.json", json.dumps(saved, ensure_ascii=False, indent=1) + "\n")
    print(md)
    print(terminal_plot(result, metric, color=sys.stdout.isatty()))
    return 0


def add_parser(sub: Any) -> None:
    from .registry import get_experiment, list_experiments

    e = sub.add_parser("experiment", help="scaling experiments: languages, queries-per-lang, alpha, finetune",
                       description="Each experiment writes result.json, per_query.json, results.md, plot.png and plot.txt; "
                                   "cells marked * (†) are significantly higher (lower) than the baseline, paired t-test p < 0.05.")
    esub = e.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    esub.required = True
    for name in list_experiments():
        cls = get_experiment(name)
        p = esub.add_parser(name, help=cls.help, description=(cls.__module__ and sys.modules[cls.__module__].__doc__) or cls.help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_common(p)
        cls.add_arguments(p)
        p.set_defaults(func=cmd_experiment)

    s = esub.add_parser("show", help="print (and with --write re-render) a saved experiment result")
    s.add_argument("result", help="an experiment output folder (or its result.json)")
    s.add_argument("--metrics", default=None)
    s.add_argument("--plot-metric", default=None)
    s.add_argument("--write", action="store_true", help="rewrite results.md, plot.png, plot.txt and the Markdown in result.json from the saved values")
    s.add_argument("--no-png", action="store_true")
    s.set_defaults(func=cmd_show, experiment="show")

    x = esub.add_parser("xquad-split", help="XQuAD -> corpus, test/eval queries, oracle generated queries, train.jsonl (split by article)")
    x.add_argument("--xquad", required=True, help="folder with xquad.LANG.json files")
    x.add_argument("--out", required=True)
    x.add_argument("--query-langs", default="ar,ru", help="languages of the test/eval queries (default ar,ru)")
    x.add_argument("--gen-langs", default="ar,ru", help="languages of the oracle generated queries (default ar,ru)")
    x.add_argument("--train-langs", default=None, help="languages of the training questions (default: the query languages)")
    x.add_argument("--train-fraction", type=float, default=0.5, help="share of articles used for training (default 0.5)")
    x.add_argument("--negatives", type=int, default=3, help="hard negatives (same-article paragraphs) per training example")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--json", action="store_true")
    x.set_defaults(func=cmd_xquad_split, experiment="xquad-split")

    t = esub.add_parser("xor-translations", help="XOR-TyDi human translations -> Tevatron training pairs (question -> English translation)")
    t.add_argument("--root", required=True, help="folder with LANG-en/{LANG.txt,en.txt}")
    t.add_argument("--out", required=True, help="training JSONL to write")
    t.add_argument("--langs", default="ar,bn,fi,ja,ko,ru,te")
    t.add_argument("--per-lang", type=int, default=None, help="pairs per language (default: all)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_xor_translations, experiment="xor-translations")
