"""``xqg train generator``: train the demo query generator (see
:mod:`xqg_tui.training.generator`) and optionally export its shipped assets.

Plugged into ``xqg train`` by :mod:`xqg_tui.training.cli` (``OPTIONAL``). Imports
nothing heavy until the command runs."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def _langs(text: str) -> tuple[str, ...]:
    from xqg_tui.languages import parse_lang_list

    return tuple(parse_lang_list(text))


def cmd_train_generator(args: argparse.Namespace) -> int:
    from xqg_tui.errors import XQGError
    from xqg_tui.paths import assets_dir, demo_dir

    from .generator import TrainConfig, export_assets, train_generator

    data_dir = None if args.data_dir.lower() == "none" else args.data_dir
    demo = None if args.demo_dir.lower() == "none" else (args.demo_dir or str(demo_dir()))
    if data_dir is not None and not Path(data_dir).is_dir():
        raise XQGError(f"--data-dir {data_dir} does not exist (expected xor-tydi/ and xquad/ in it), or give 'none'")
    cfg = TrainConfig(
        out_dir=args.out, encoder=args.encoder, data_dir=data_dir, demo_dir=demo,
        langs=_langs(args.langs), xquad_langs=_langs(args.xquad_langs),
        translations_per_lang=args.translations_per_lang, holdout_every=args.holdout_every,
        demo_repeat=args.demo_repeat, xquad_repeat=args.xquad_repeat, translation_repeat=args.translation_repeat,
        resume=args.resume, encoder_layers=args.encoder_layers, decoder_layers=args.decoder_layers,
        max_source_len=args.max_source_len, max_target_len=args.max_target_len, batch_tokens=args.batch_tokens,
        lr=args.lr, warmup_steps=args.warmup_steps, label_smoothing=args.label_smoothing, min_token_count=args.min_token_count, minutes=args.minutes,
        max_steps=args.max_steps, checkpoint_minutes=args.checkpoint_minutes, threads=args.threads, seed=args.seed,
    )

    def log(message: str) -> None:
        if not args.quiet:
            print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    out = train_generator(cfg, log=log)
    if args.export:
        target = Path(args.export) if args.export != "demo" else assets_dir() / "demo-generator"
        export_assets(out, target, encoder_spec=args.encoder, copy_bias=args.copy_bias, temperature=args.head_temperature)
        log(f"assets written to {target}; `xqg models prepare demo --force` assembles them")
    print(out)
    return 0


def add_parser(tsub: Any) -> None:
    p = tsub.add_parser(
        "generator",
        help="train the small demo query generator (frozen E5 encoder + BERT decoder)",
        description="Trains an EncoderDecoderModel query generator: the offline encoder's first layers (frozen, "
                    "states cached) and a small BERT decoder, on the XOR-TyDi question translations and XQuAD "
                    "(--data-dir) plus the demo TRAINING queries (--demo-dir; the evaluation queries are never read). "
                    "Checkpoints regularly into --out; --export writes the shipped assets.",
    )
    p.add_argument("--out", required=True, help="training folder (checkpoints, cached encoder states)")
    p.add_argument("--data-dir", default="../shared/data", help="folder with xor-tydi/ and xquad/ ('none' to skip)")
    p.add_argument("--demo-dir", default=None, help="demo collection with queries.train.jsonl (default: bundled; 'none' to skip)")
    p.add_argument("--encoder", default="offline", help="encoder folder or name (default offline)")
    p.add_argument("--langs", default="ar,bn,fi,ja,ko,ru,te")
    p.add_argument("--xquad-langs", default="ar,ru")
    p.add_argument("--translations-per-lang", type=int, default=800)
    p.add_argument("--holdout-every", type=int, default=6, help="hold out every N-th XQuAD paragraph (0: none)")
    p.add_argument("--demo-repeat", type=int, default=8, help="demo training pairs per epoch (weight)")
    p.add_argument("--xquad-repeat", type=int, default=1, help="XQuAD passage-to-question pairs per epoch (weight)")
    p.add_argument("--translation-repeat", type=int, default=1, help="XOR-TyDi translation pairs per epoch (weight; 0 drops them)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out (weights, step, optimizer state); same data/model options")
    p.add_argument("--encoder-layers", type=int, default=6)
    p.add_argument("--decoder-layers", type=int, default=3)
    p.add_argument("--max-source-len", type=int, default=256)
    p.add_argument("--max-target-len", type=int, default=32)
    p.add_argument("--batch-tokens", type=int, default=1000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=30)
    p.add_argument("--min-token-count", type=int, default=3, help="output vocabulary: target tokens seen this often (+ all demo target tokens)")
    p.add_argument("--label-smoothing", type=float, default=0.05)
    p.add_argument("--minutes", type=float, default=37.0, help="training time budget (the schedule follows it)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N steps (schedule follows steps)")
    p.add_argument("--checkpoint-minutes", type=float, default=4.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--export", default=None, help="after training, write the assets to this folder ('demo': assets/demo-generator)")
    p.add_argument("--copy-bias", type=float, default=0.0,
                   help="with --export: recommended decoding bias on the passage's names/numbers (0 = off)")
    p.add_argument("--head-temperature", type=float, default=1.0,
                   help="with --export: divide the exported logits by this (calibrates an over-confident model; 1 = as trained)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train_generator)
