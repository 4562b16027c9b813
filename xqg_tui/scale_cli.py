"""``xqg merge`` and ``xqg ann ...``: scale-out commands (shards, approximate search)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .cli import _add_fusion_args, _spec_from_args


def cmd_merge(args: argparse.Namespace) -> int:
    from .index.merge import merge_shards

    say = None if args.quiet or args.json else (lambda msg: print(f"xqg merge: {msg}", file=sys.stderr, flush=True))
    res = merge_shards(args.shards, args.out, layout=args.layout, progress=say)
    info = {
        "index": str(res.path), "layout": res.layout, "shards": res.shards, "passages": res.passages,
        "linked_files": res.linked_files, "copied_files": res.copied_files, "copied_bytes": res.copied_bytes,
        "seconds": round(res.seconds, 3), "notes": res.notes,
    }
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
    elif not args.quiet:
        for note in res.notes:
            print(f"xqg: note: {note}", file=sys.stderr)
        how = f"{res.linked_files} files hard-linked" if res.layout == "sharded" else f"{res.copied_bytes:,} bytes written"
        print(f"merged {res.shards} shards into {res.path} ({res.layout}): {res.passages} passages, {how}")
    return 0


def _probes(searcher: Any, args: argparse.Namespace):
    if not args.queries:
        return None
    from .io.queries import read_queries

    queries = read_queries(Path(args.queries), lang=args.lang)
    return searcher.encode_queries([q.text for q in queries[: args.sample]])


def _searcher_and_spec(args: argparse.Namespace):
    from .search import Searcher

    s = Searcher.open(args.index, block_rows=args.block_rows)
    return s, _spec_from_args(s, args)


def cmd_ann_build(args: argparse.Namespace) -> int:
    from .index.ann import AnnParams, build_ann, describe_spec

    s, spec = _searcher_and_spec(args)
    params = AnnParams(m=args.m, ef_construction=args.ef_construction, ef=args.ef, nlist=args.nlist, nbits=args.nbits, nprobe=args.nprobe)
    meta = build_ann(s, args.kind, spec, params, probes=_probes(s, args), sample=args.sample, seed=args.seed)
    if args.json:
        print(json.dumps({k: v for k, v in meta.items() if k != "encoder"}, ensure_ascii=False))
        return 0
    r = meta["recall"]
    print(f"wrote {Path(args.index) / 'ann' / meta['file']}: {args.kind} {meta['params']} for {describe_spec(meta['spec'])}, "
          f"built in {meta['build_seconds']:.2f}s; recall@10 {r['recall@10']:.3f}, recall@100 {r['recall@100']:.3f} "
          f"({r['probes']} {r['probe_kind']})")
    return 0


def cmd_ann_eval(args: argparse.Namespace) -> int:
    from .index.ann import describe_spec, eval_ann

    s, spec = _searcher_and_spec(args)
    res = eval_ann(s, args.kind, spec, probes=_probes(s, args), sample=args.sample, seed=args.seed, ef=args.ef, nprobe=args.nprobe)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return 0
    print(f"{args.kind} {res['params']} for {describe_spec(res['spec'])} on {res['probes']} {res['probe_kind']}:")
    print(f"  recall@10 {res['recall@10']:.3f}   recall@100 {res['recall@100']:.3f}")
    print(f"  exact {res['exact_ms_per_query']:.3f} ms/query   ann {res['ann_ms_per_query']:.3f} ms/query   speedup {res['speedup']}x")
    return 0


def _add_ann_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("index", help="index folder (ordinary or an index of shards)")
    p.add_argument("--kind", choices=["hnsw", "ivfpq"], required=True)
    _add_fusion_args(p)
    p.add_argument("--ef", type=int, default=None, help="HNSW efSearch (default 64)")
    p.add_argument("--nprobe", type=int, default=None, help="IVF lists visited per query (default min(nlist, 16))")
    p.add_argument("--queries", default=None, help="held-out queries (JSONL/TSV) as recall probes (default: stored generated-query vectors)")
    p.add_argument("--lang", default=None, help="language of a TSV queries file")
    p.add_argument("--sample", type=int, default=200, help="probe vectors for the recall measurement (default 200)")
    p.add_argument("--block-rows", type=int, default=None, help="rows per block when reading the fused matrix")
    p.add_argument("--json", action="store_true")


def add_parser(sub: Any) -> None:
    m = sub.add_parser("merge", help="merge the shards of one build (`xqg build --shard I/N`) into one index")
    m.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="every shard folder 0..N-1, once")
    m.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    m.add_argument("--layout", choices=["sharded", "single"], default="sharded",
                   help="sharded (default): an index of shards, files hard-linked; single: one ordinary index (vectors copied once)")
    m.add_argument("--quiet", action="store_true")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_merge)

    a = sub.add_parser("ann", help="approximate search: build or evaluate a faiss HNSW / IVF-PQ index under INDEX/ann/")
    asub = a.add_subparsers(dest="ann_cmd", metavar="ACTION")
    asub.required = True
    b = asub.add_parser("build", help="build the ANN index for one fusion setting and measure its recall")
    _add_ann_common(b)
    b.add_argument("--m", type=int, default=None, help="HNSW links per node (default 32); IVF-PQ sub-quantizers (must divide the dimension)")
    b.add_argument("--ef-construction", type=int, default=None, help="HNSW efConstruction (default 80)")
    b.add_argument("--nlist", type=int, default=None, help="IVF lists (default ~4 sqrt(N))")
    b.add_argument("--nbits", type=int, default=None, help="PQ bits per sub-quantizer (default 8, fewer on tiny indexes)")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=cmd_ann_build)
    e = asub.add_parser("eval", help="recall vs exact search and speed of a built ANN index")
    _add_ann_common(e)
    e.add_argument("--seed", type=int, default=1, help="probe sample seed (default 1: other probes than the build's)")
    e.set_defaults(func=cmd_ann_eval)
