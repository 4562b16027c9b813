"""``xqg train ...``: the trainers. ``encoder`` is here; other trainers plug in as
optional modules with an ``add_parser(train_subparsers)`` function (see OPTIONAL)."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

# Modules that may add their own `xqg train NAME` (e.g. the generator trainer).
OPTIONAL = ("xqg_tui.training.generator_cli",)


def cmd_train_encoder(args: argparse.Namespace) -> int:
    from .encoder import TrainConfig, read_training_file, subset, train_encoder
    from ..experiments.provenance import file_record

    examples = read_training_file(args.train)
    if args.size is not None:
        examples = subset(examples, args.size, args.seed)
    cfg = TrainConfig(
        base=args.base, out=Path(args.out), epochs=args.epochs, batch_size=args.batch_size,
        hard_negatives=args.hard_negatives, learning_rate=args.lr, temperature=args.temperature, seed=args.seed,
        max_steps=args.max_steps, max_query_length=args.max_query_length, max_passage_length=args.max_passage_length,
        freeze_embeddings=not args.train_embeddings, device=args.device, threads=args.threads,
        train_layers=args.train_layers, schedule=args.schedule,
    )
    last = [0.0]

    def progress(step: int, total: int, loss: float) -> None:
        if args.quiet or args.json:
            return
        if step == total or time.perf_counter() - last[0] > 2:
            last[0] = time.perf_counter()
            print(f"\rtrain {step}/{total} steps  loss {loss:.4f}", end="", file=sys.stderr, flush=True)

    res = train_encoder(cfg, examples, progress, data_info={**file_record(args.train), "size": len(examples), "subset_seed": args.seed})
    if not args.quiet and not args.json:
        print(file=sys.stderr)
    info = {"checkpoint": str(res.path), "examples": res.examples, "steps": res.steps, "seconds": round(res.seconds, 1),
            "temperature": res.temperature, "loss_first": res.losses[0] if res.losses else None,
            "loss_last": res.losses[-1] if res.losses else None}
    if args.json:
        print(json.dumps(info))
    elif not args.quiet:
        print(f"saved {res.path}: {res.examples} examples, {res.steps} steps in {res.seconds:.0f}s "
              f"(loss {info['loss_first']:.3f} -> {info['loss_last']:.3f}); use it with --encoder {res.path}")
    return 0


def add_encoder_parser(tsub: Any) -> None:
    p = tsub.add_parser("encoder", help="contrastive fine-tuning of a dense encoder (Tevatron JSONL)",
                        description="InfoNCE with in-batch negatives plus hard negatives from negative_passages; "
                                    "saves a transformers folder (safetensors) usable as --encoder FOLDER.")
    p.add_argument("--base", default="offline", help="encoder to start from: offline, a folder or a hub id (default offline)")
    p.add_argument("--train", required=True, help="Tevatron JSONL: query, positive_passages, negative_passages")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--size", type=int, default=None, help="train on the first N examples of a seeded shuffle")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--hard-negatives", type=int, default=1, help="hard negatives per query (default 1)")
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--temperature", type=float, default=None, help="default: 0.05 for normalised encoders, 1.0 otherwise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-query-length", type=int, default=32)
    p.add_argument("--max-passage-length", type=int, default=128)
    p.add_argument("--train-embeddings", action="store_true", help="also update the word embeddings (frozen by default)")
    p.add_argument("--train-layers", type=int, default=None, help="train only the top N transformer layers (faster on CPU)")
    p.add_argument("--schedule", choices=["linear", "constant"], default="linear", help="learning rate after warm-up")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train_encoder)


def add_parser(sub: Any) -> None:
    t = sub.add_parser("train", help="train models: encoder (and others when installed)")
    tsub = t.add_subparsers(dest="train_cmd", metavar="MODEL")
    tsub.required = True
    add_encoder_parser(tsub)
    for name in OPTIONAL:
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            if exc.name != name:  # the module exists but is broken: say so rather than hide it
                raise
            continue
        mod.add_parser(tsub)
