"""End-to-end build of the demo collection, then a rebuild after an alpha change.

``build_index`` on ``assets/demo/corpus.jsonl`` (or the parts it is assembled
from) with the offline encoder and the demo generator (or its stand-in, see
``standin.py``), 7 languages x 5 queries, seed 0, into a fresh folder. The models
are loaded once beforehand (their load times are reported separately) and handed
to ``build_index``, so their ``.calls`` counters show exactly what each build ran.

Then the same build with another alpha: it must not call any model (asserted,
from the models' own counters and ``BuildResult.model_calls``); its wall time
is compared with the first build's.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from . import models
from .common import Result, log
from .encode import demo_passages

STAGES = ("encode", "generate", "encode-queries", "fuse", "write")


def _write_corpus(path: Path, limit: int | None) -> int:
    pairs = demo_passages(limit)
    with open(path, "w", encoding="utf-8") as f:
        for i, (title, text) in enumerate(pairs):
            f.write(json.dumps({"docid": f"demo-{i:03d}", "title": title, "text": text}, ensure_ascii=False) + "\n")
    return len(pairs)


def run(quick: bool = False, workdir: Path | None = None) -> list[Result]:
    from xqg_tui.index.builder import BuildConfig, build_index
    from xqg_tui.index.store import open_index

    limit_env = os.environ.get("XQG_BENCH_DEMO_PASSAGES", "").strip()
    limit = 2 if quick else (int(limit_env) if limit_env.isdigit() and int(limit_env) > 0 else None)
    langs = ["ar", "ja"] if quick else None  # None = the paper's seven
    n = 2 if quick else 5
    tmp = Path(tempfile.mkdtemp(prefix="xqg-bench-demo-", dir=workdir))
    results: list[Result] = []
    try:
        enc = models.encoder(128)
        gen, desc, real = models.generator()
        t_enc = models.load_seconds.get("encoder", float("nan"))
        t_gen = models.load_seconds.get("generator", float("nan"))
        saved = gen.max_new_tokens
        max_new = (8 if quick else 64) if real else (4 if quick else 24)
        corpus = tmp / "corpus.jsonl"
        n_pass = _write_corpus(corpus, limit)
        out = tmp / "index"
        cfg = dict(corpus=corpus, out=out, encoder="offline", generator="demo" if real else "standin",
                   langs=langs, queries_per_lang=n, seed=0, max_new_tokens=max_new)
        log(f"demo: building {n_pass} passages x {len(langs) if langs else 7} langs x {n} queries "
            f"({desc}, max {max_new} new tokens)")
        gen.max_new_tokens = max_new
        e0, g0 = enc.calls, gen.calls
        t0 = time.perf_counter()
        first = build_index(BuildConfig(**cfg), encoder=enc, generator=gen)
        t_first = time.perf_counter() - t0
        e1, g1 = enc.calls, gen.calls
        log(f"demo: built in {t_first:.1f} s: " + ", ".join(f"{k} {v:.1f}s" for k, v in first.stage_seconds.items())
            + f"; {e1 - e0} encoder and {g1 - g0} generator calls")
        man1 = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        alpha1 = man1["search_defaults"]["alpha"]
        alpha2 = 0.5 if alpha1 != 0.5 else 0.3
        t0 = time.perf_counter()
        second = build_index(BuildConfig(**cfg, alpha=alpha2), encoder=enc, generator=gen)
        t_second = time.perf_counter() - t0
        e2, g2 = enc.calls, gen.calls
        calls_rebuild = (e2 - e1) + (g2 - g1) + sum(second.model_calls.values())
        assert calls_rebuild == 0, f"rebuild after an alpha change called a model: {e2 - e1} encoder, {g2 - g1} generator"
        idx = open_index(out)
        assert abs(idx.search_defaults["alpha"] - alpha2) < 1e-12, "rebuild did not store the new alpha"
        gen.max_new_tokens = saved
        queries = first.generated_queries
        common_note = f"{n_pass} demo passages, {len(first.langs)} langs x {n}, {desc}, max {max_new} new tokens"
        for stage in STAGES:
            secs = first.stage_seconds.get(stage)
            extra = {}
            unit_note = ""
            if stage == "encode" and secs:
                extra["passages_per_s"] = n_pass / secs
                unit_note = f"{n_pass / secs:.2f} passages/s"
            elif stage == "generate" and secs:
                extra["queries_per_s"] = n_pass * len(first.langs) * n / secs
                unit_note = f"{n_pass * len(first.langs) * n / secs:.2f} queries/s"
            elif stage == "encode-queries" and secs:
                extra["queries_per_s"] = queries / secs
                unit_note = f"{queries / secs:.1f} queries/s"
            results.append(Result(
                f"demo-build-{stage}", secs, None, "-", "s", "lower", None,
                note=f"{common_note}{'; ' + unit_note if unit_note else ''}", extra=extra,
            ))
        results.append(Result(
            "demo-build-total", t_first, None, "-", "s", "lower", None,
            note=(f"{common_note}; models loaded before the build (offline encoder {t_enc:.1f} s, generator "
                  f"{t_gen:.1f} s, not included); {e1 - e0} encoder + {g1 - g0} generator calls"),
            extra={"encoder_calls": e1 - e0, "generator_calls": g1 - g0, "generated_queries": queries,
                   "encoder_load_s": t_enc, "generator_load_s": t_gen},
        ))
        results.append(Result(
            "demo-rebuild-alpha", t_second, t_first, "the first build (all stages)", "s", "lower", None,
            note=f"same build, alpha {alpha1} -> {alpha2}: reused {', '.join(second.reused) or 'nothing'}",
            extra={"stage_seconds": second.stage_seconds},
        ))
        results.append(Result(
            "demo-rebuild-alpha-model-calls", float(calls_rebuild), float((e1 - e0) + (g1 - g0)),
            "model calls of the first build", "calls", "lower", 0.0, target_on="ours",
            note="encoder + generator forward batches during the rebuild (asserted 0)",
        ))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results
