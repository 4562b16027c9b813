"""Fine-tuning the retriever on growing amounts of training data, with and without xQG.

For each size s in ``--sizes`` (0 = the encoder as it is) the encoder is
fine-tuned from the same base on the first s examples of one seeded shuffle of
the training file (so the subsets are nested), saved as a transformers folder,
and evaluated on the same queries twice:

* ``fine-tuned``: plain dense retrieval with the fine-tuned encoder;
* ``fine-tuned + xQG``: the same encoder re-encodes the passages *and the
  generated query texts stored in the index* (``generated.jsonl``), which are
  fused as usual (alpha, fusion, languages from the flags or the index).

This is the one experiment that runs models: the point is to compare what xQG
adds with what supervised data adds, and whether xQG still helps a fine-tuned
retriever. Significance marks are against size 0 without xQG; a second table
tests xQG against plain retrieval at each size. Checkpoints whose training
settings and data are unchanged are reused, so a stopped run resumes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import XQGError
from ..evaluation.rkt import TokenCache
from ..index.store import Index, open_index
from ..languages import parse_lang_list
from .base import Experiment, Inputs, parse_int_list
from .core import ALL, Context, ExperimentResult, Progress, Setting, SettingResult, attach_comparisons, load_qrels, load_queries
from .provenance import file_record, now_iso, provenance
from .registry import register


def _run_key(config: Any, data_sha: str, size: int, parent: str = "") -> str:
    """Identity of one checkpoint: settings, data, size and (incremental) the checkpoint it continued."""
    d = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items() if k not in ("out", "threads", "device", "base")}
    blob = {"config": d, "data": data_sha, "size": size, "base": parent or str(config.base)}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:20]


def reencoded_index(index: Index, encoder: Any, progress: Progress | None = None, langs: Sequence[str] | None = None) -> Index:
    """An in-memory copy of ``index`` whose passages and generated queries are encoded
    by ``encoder`` (the query texts come from the index's generated.jsonl). Only
    ``langs`` (default: all) are encoded: the others are not fused, so not needed."""
    if progress:
        progress(f"encoding {index.size} passages")
    P = np.asarray(encoder.encode_passages(index.passages), dtype=np.float32)
    qv: dict[str, np.ndarray] = {}
    qc: dict[str, np.ndarray] = {}
    keep = list(index.langs) if langs is None else [l for l in index.langs if l in langs]
    for lang in keep:
        counts = np.asarray(index.query_counts[lang], dtype=np.int64)
        nmax = int(index.query_vectors[lang].shape[1])
        texts: list[str] = []
        slots: list[tuple[int, int]] = []
        for row in range(index.size):
            stored = index.generated(row).get(lang, [])
            for j, text in enumerate(stored[: min(int(counts[row]), nmax)]):
                texts.append(text)
                slots.append((row, j))
        if progress:
            progress(f"encoding {len(texts)} generated queries in {lang}")
        V = np.zeros((index.size, nmax, P.shape[1]), dtype=np.float32)
        if texts:
            E = np.asarray(encoder.encode_queries(texts), dtype=np.float32)
            for (row, j), vec in zip(slots, E):
                V[row, j] = vec
        qv[lang] = V
        qc[lang] = counts
    manifest = json.loads(json.dumps(index.manifest))
    manifest["encoder"] = encoder.fingerprint()
    manifest["generation"]["langs"] = keep
    manifest["search_defaults"]["langs"] = [l for l in manifest["search_defaults"].get("langs", keep) if l in keep] or keep
    generated = [{l: v for l, v in index.generated(r).items() if l in keep} for r in range(index.size)]
    return Index(index.root, manifest, list(index.passages), P, qv, qc, generated)


@register
class FinetuneExperiment(Experiment):
    name = "finetune"
    title = "Fine-tuning vs xQG"
    help = "contrastive fine-tuning on growing training subsets, each evaluated with and without xQG"
    x_label = "training examples"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--train", required=True, help="training data, Tevatron JSONL (query, positive_passages, negative_passages)")
        parser.add_argument("--sizes", default="0,500,1000,2000", help="training subset sizes (default: %(default)s)")
        parser.add_argument("--eval-queries", action="append", default=None, help="evaluation queries (same as --queries)")
        parser.add_argument("--encoder", default=None, help="base encoder to fine-tune (default: the index's)")
        parser.add_argument("--checkpoints", default=None, help="folder for the checkpoints (default: OUT/checkpoints)")
        parser.add_argument("--epochs", type=float, default=1.0)
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument("--hard-negatives", type=int, default=1, help="hard negatives per query when the data has them (default 1)")
        parser.add_argument("--lr", type=float, default=2e-5)
        parser.add_argument("--temperature", type=float, default=None, help="softmax temperature (default: 0.05 normalised encoders, 1.0 others)")
        parser.add_argument("--max-steps", type=int, default=None)
        parser.add_argument("--train-embeddings", action="store_true", help="also update the word embeddings (frozen by default)")
        parser.add_argument("--train-layers", type=int, default=None, help="train only the top N transformer layers (faster on CPU)")
        parser.add_argument("--incremental", action="store_true",
                            help="continue each size from the previous size's checkpoint on the new examples only "
                                 "(one pass over the nested subsets, checkpointed at each size; constant learning rate)")
        parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
        parser.add_argument("--langs", default=None, help="generation languages fused in the xQG runs (default: the index's)")
        parser.add_argument("--queries-per-lang", "-n", dest="n", type=int, default=None)

    @classmethod
    def options_from_args(cls, args: argparse.Namespace) -> dict[str, Any]:
        return {
            "train": args.train, "sizes": args.sizes, "encoder": args.encoder,
            "checkpoints": args.checkpoints, "epochs": args.epochs, "batch_size": args.batch_size,
            "hard_negatives": args.hard_negatives, "lr": args.lr, "temperature": args.temperature,
            "max_steps": args.max_steps, "train_embeddings": args.train_embeddings, "threads": args.threads,
            "train_layers": args.train_layers, "incremental": args.incremental,
            "device": args.device, "langs": args.langs, "n": args.n,
        }

    def run(self, inputs: Inputs, progress: Progress | None = None) -> ExperimentResult:
        from ..models.encoder import Encoder, fingerprint_mismatches
        from ..search import Searcher
        from ..training.encoder import TrainConfig, read_training_file, subset, train_encoder

        started, t0 = now_iso(), time.perf_counter()
        o = self.options
        if not o.get("train"):
            raise XQGError("--train FILE is required")
        sizes = sorted(set(parse_int_list(str(o.get("sizes", "0")))))
        if any(s < 0 for s in sizes):
            raise XQGError("--sizes must be >= 0")
        if 0 not in sizes:
            sizes = [0, *sizes]  # the baseline
        train_path = Path(o["train"])
        examples = read_training_file(train_path)
        if sizes[-1] > len(examples):
            raise XQGError(f"--sizes asks for {sizes[-1]} examples but {train_path} has {len(examples)}")
        data = file_record(train_path)
        index = open_index(inputs.index)
        if not index.langs:
            raise XQGError("the index has no generated queries: build it with --generator or --import-generated")
        base = str(o.get("encoder") or index.encoder_spec)
        enc_meta = index.manifest["encoder"]
        queries, original = load_queries(inputs.queries)
        qrels = load_qrels(inputs.qrels, original)
        out_dir = Path(o.get("out") or ".")
        ckpt_root = Path(o["checkpoints"]) if o.get("checkpoints") else out_dir / "checkpoints"
        cfg = TrainConfig(
            base=base, out=ckpt_root / "tmp", epochs=float(o.get("epochs", 1.0)), batch_size=int(o.get("batch_size", 16)),
            hard_negatives=int(o.get("hard_negatives", 1)), learning_rate=float(o.get("lr", 2e-5)),
            temperature=o.get("temperature"), seed=inputs.seed, max_steps=o.get("max_steps"),
            max_query_length=int(enc_meta.get("max_query_length", 32)), max_passage_length=int(enc_meta.get("max_passage_length", 128)),
            freeze_embeddings=not o.get("train_embeddings", False), device=str(o.get("device") or "cpu"), threads=o.get("threads"),
            train_layers=o.get("train_layers"), schedule="constant" if o.get("incremental") else "linear",
        )
        incremental = bool(o.get("incremental"))
        prev: tuple[int, Path, str] | None = None  # (size, folder, run key) of the last checkpoint
        langs = parse_lang_list(o["langs"], tuple(index.langs)) if o.get("langs") else None
        cache = TokenCache()
        results: list[SettingResult] = []
        training: dict[str, Any] = {}
        notes: list[str] = []
        spec_used = None
        fused = langs or list(index.search_defaults.get("langs") or index.langs)
        for size in sizes:
            t_size = time.perf_counter()
            info: dict[str, Any] = {"size": size}
            if size == 0:
                enc = Encoder.load(base, device=cfg.device, max_query_length=cfg.max_query_length, max_passage_length=cfg.max_passage_length, threads=cfg.threads)
                if not fingerprint_mismatches(enc_meta, enc.fingerprint()):
                    searcher = Searcher(index, enc)  # same encoder as the index: its stored vectors are reused
                    info["reused_index_vectors"] = True
                else:
                    searcher = Searcher(reencoded_index(index, enc, progress, fused), enc)
                    info["reused_index_vectors"] = False
            else:
                folder = ckpt_root / f"size-{size}"
                run_cfg, start = replace(cfg, out=folder), 0
                if incremental and prev is not None:
                    # continue the previous checkpoint on the next examples of the same shuffle
                    run_cfg, start = replace(run_cfg, base=str(prev[1]), warmup_ratio=0.0), prev[0]
                key = _run_key(run_cfg, data["sha256"], size, prev[2] if (incremental and prev) else "")
                marker = folder / "xqg_training.json"
                saved = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else {}
                if saved.get("data", {}).get("run_key") == key:
                    info.update(reused_checkpoint=True, steps=saved.get("steps"), train_seconds=saved.get("seconds"),
                                loss_every_10_steps=saved.get("loss_every_10_steps"))
                    if progress:
                        progress(f"size {size}: reusing checkpoint {folder}")
                else:
                    if progress:
                        progress(f"size {size}: training on {size} examples")
                    last = [0.0]

                    def tick(step: int, total: int, loss: float, size: int = size) -> None:
                        if progress and (step == total or time.perf_counter() - last[0] > 30):
                            last[0] = time.perf_counter()
                            progress(f"size {size}: step {step}/{total} loss {loss:.3f}")

                    res = train_encoder(run_cfg, subset(examples, size, inputs.seed)[start:], tick,
                                        data_info={**data, "size": size, "subset_seed": inputs.seed, "run_key": key,
                                                   "continued_from": str(prev[1]) if start else None, "examples_in_this_run": size - start})
                    info.update(reused_checkpoint=False, steps=res.steps, train_seconds=round(res.seconds, 1),
                                loss_every_10_steps=[round(x, 4) for x in res.losses])
                info["checkpoint"] = str(folder)
                info["continued_from"] = str(prev[1]) if start else None
                prev = (size, folder, key)
                enc = Encoder.load(str(folder), device=cfg.device, max_query_length=cfg.max_query_length, max_passage_length=cfg.max_passage_length, threads=cfg.threads)
                searcher = Searcher(reencoded_index(index, enc, progress, fused), enc)
            spec = searcher.spec(alpha=inputs.alpha, fusion=inputs.fusion, langs=langs, n=o.get("n"))
            if spec.is_plain:
                raise XQGError("alpha is 0 (or no languages): the xQG runs would be plain retrieval; give --alpha")
            spec_used = spec
            if progress:
                progress(f"size {size}: evaluating {len(queries)} queries")
            ctx = Context(searcher, queries, qrels, k=inputs.k, token_cache=cache)
            for key, series, var in ((f"plain:{size}", "fine-tuned", {ALL: None}), (f"xqg:{size}", "fine-tuned + xQG", {ALL: spec})):
                s = Setting(key, series, size, f"{size} examples" + (" + xQG" if key.startswith("xqg") else ""), [var], params={"training": info})
                report = ctx.evaluate_setting(s)
                assert report is not None
                results.append(SettingResult(s, report, None, 0.0))
            info["seconds_total"] = round(time.perf_counter() - t_size, 1)
            training[str(size)] = info
            del searcher, ctx, enc
        attach_comparisons(results, "plain:0")
        notes.append(f"xQG runs: alpha {spec_used.alpha:g}, {spec_used.fusion} fusion, languages {', '.join(spec_used.langs)}, "
                     f"queries per language {'all' if spec_used.n is None else spec_used.n}; every model size re-encodes the passages "
                     "and the stored generated query texts")
        how = ("one pass, each size continuing the previous checkpoint on the new examples (constant learning rate)"
               if incremental else f"each size trained from {base}")
        notes.append(f"training: {len(examples)} examples in {train_path.name}; nested seeded subsets; {how}; "
                     f"{cfg.epochs:g} epoch(s), batch {cfg.batch_size}, {cfg.hard_negatives} hard negative(s) per query, "
                     f"lr {cfg.learning_rate:g}, word embeddings {'frozen' if cfg.freeze_embeddings else 'trained'}"
                     + (f", top {cfg.train_layers} layers trained" if cfg.train_layers is not None else ""))
        settings = {
            "experiment": self.name, "index": str(inputs.index),
            "queries": [{"lang": l, "path": str(p)} for l, p in inputs.queries], "qrels": [str(p) for p in inputs.qrels],
            "k": inputs.k, "seed": inputs.seed, "sizes": sizes, "base_encoder": base,
            "train_config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items() if k != "out"},
            "checkpoints": str(ckpt_root), "xqg_spec": {"alpha": spec_used.alpha, "fusion": spec_used.fusion, "langs": list(spec_used.langs), "n": spec_used.n},
        }
        data_files = [p for _, p in inputs.queries] + list(inputs.qrels) + [train_path]
        return ExperimentResult(
            name=self.name, title=self.title,
            description=("Contrastive fine-tuning (InfoNCE, in-batch + hard negatives) on growing training subsets; each "
                         "checkpoint evaluated plain and with xQG (its own re-encoding of the passages and generated queries)."),
            baseline="plain:0", results=results, languages=sorted({q.lang for q in queries}), metrics=results[0].report.metrics,
            settings=settings,
            provenance=provenance(index, data_files, inputs.seed, started, time.perf_counter() - t0, {"training": training}),
            x_label=self.x_label, notes=notes,
            extra_comparisons=[("xQG vs no xQG at the same training size", [(f"xqg:{s}", f"plain:{s}") for s in sizes])],
        )
