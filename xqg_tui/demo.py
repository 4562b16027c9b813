"""``xqg demo``: the bundled seven-language demo, offline.

The demo index is built on first use into the user cache from
``assets/demo/corpus.jsonl`` with the offline encoder. Its generated queries are
the ones the bundled demo generator wrote (``assets/demo/generated.jsonl``,
seed 0, 5 per language), imported rather than regenerated so that the first
run takes well under two minutes; ``--regenerate`` runs the generator itself.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .errors import XQGError
from .paths import cache_dir, demo_dir

DEMO_ALPHA = 0.3
DEMO_FUSION = "mean"

DEMO_NOTE = (
    "Demo: 150 English passages, queries from the small bundled demo generator "
    "(not the paper's mT5; see assets/demo-generator/MODEL_CARD.md)."
)


def demo_files() -> dict[str, Path]:
    d = demo_dir()
    return {
        "corpus": d / "corpus.jsonl",
        "generated": d / "generated.jsonl",
        "eval_queries": d / "queries.eval.jsonl",
        "train_queries": d / "queries.train.jsonl",
        "qrels": d / "qrels.eval.trec",
    }


def demo_index_dir() -> Path:
    return cache_dir() / "demo-index"


def ensure_demo_index(rebuild: bool = False, regenerate: bool = False, quiet: bool = False, progress: Any = None) -> Path:
    """Build the demo index if it is missing (or asked to); return its folder."""
    from .index.builder import BuildConfig, build_index
    from .index.store import read_manifest

    files = demo_files()
    if not files["corpus"].exists():
        raise XQGError(f"{files['corpus']}: the demo collection is missing", "run xqg demo from a clone of the project (assets/demo)")
    out = demo_index_dir()
    if not rebuild and not regenerate:
        try:
            read_manifest(out)
            return out
        except XQGError:
            pass
    if progress is None:
        from .progress import TerminalProgress

        progress = TerminalProgress(quiet=quiet)
    use_import = files["generated"].exists() and not regenerate
    cfg = BuildConfig(
        corpus=files["corpus"],
        out=out,
        encoder="offline",
        generator="none" if use_import else "demo",
        import_generated=files["generated"] if use_import else None,
        queries_per_lang=5,
        seed=0,
        # Chosen on the training queries only (assets/demo-generator/MODEL_CARD.md).
        alpha=DEMO_ALPHA,
        fusion=DEMO_FUSION,
    )
    if not quiet:
        print("[xqg demo] building the demo index (first run only) ...", file=sys.stderr)
    build_index(cfg, progress=progress)
    return out


def demo_eval(k: int = 100) -> dict[str, Any]:
    """Plain vs augmented on the demo's evaluation queries (never used for training)."""
    from .evaluation.report import compare_reports, evaluate, render_table
    from .io.qrels import read_qrels
    from .io.queries import read_queries
    from .search import Searcher

    files = demo_files()
    index = ensure_demo_index(quiet=True)
    s = Searcher.open(index)
    queries = read_queries(files["eval_queries"])
    qrels = read_qrels(files["qrels"]) if files["qrels"].exists() else None
    text = {p.docid: p.text for p in s.index.passages}
    plain = evaluate(s.retrieve(queries, k=k, spec=s.spec(alpha=0.0)), queries, qrels=qrels, passage_text=text)
    aug = evaluate(s.retrieve(queries, k=k, spec=s.spec()), queries, qrels=qrels, passage_text=text)
    cmp = compare_reports(plain, aug)
    return {"plain": plain, "augmented": aug, "comparison": cmp, "table": render_table(aug, cmp), "spec": s.spec()}


def run_demo(args: Any) -> int:
    if getattr(args, "eval", False):
        res = demo_eval()
        if getattr(args, "json", False):
            print(json.dumps({"plain": res["plain"].to_dict(), "augmented": res["augmented"].to_dict(), "compare": res["comparison"].to_dict()}, ensure_ascii=False))
        else:
            spec = res["spec"]
            print(f"demo evaluation queries: plain vs augmented (alpha {spec.alpha:g}, {spec.fusion} fusion, {','.join(spec.langs)})")
            print(res["table"])
        return 0
    index = ensure_demo_index(rebuild=getattr(args, "rebuild", False), quiet=getattr(args, "quiet", False))
    from .tui.app import run_app

    files = demo_files()
    return run_app(
        index=index,
        title="xqg demo",
        note=DEMO_NOTE,
        eval_queries=files["eval_queries"],
        eval_qrels=files["qrels"] if files["qrels"].exists() else None,
        build_defaults={"corpus": str(files["corpus"]), "encoder": "offline", "generator": "demo"},
    )
