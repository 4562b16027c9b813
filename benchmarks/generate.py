"""Query generation: ``QueryGenerator.generate`` vs a plain ``model.generate`` loop.

Both: the same checkpoint, the same demo passages, 5 queries x 7 languages per
passage, top-k 10 sampling, the same maximum length, the same threads.

* ours: ``QueryGenerator.load("demo")`` (which also restricts an output layer whose
  bias blocks most of the vocabulary to its allowed rows), then
  ``generator.generate(passages, langs, n=5, seed=0)`` (prompts of all
  passages x languages sorted by length and batched, 16 prompts = 80 rows per
  batch, encoder run once per prompt, KV cache, per-row hashed top-k sampler);
* baseline, as a user would first write it: the checkpoint loaded with
  ``AutoModelForSeq2SeqLM.from_pretrained(folder)``; for each passage, for each language,
  ``model.generate(**tokenizer(prompt), do_sample=True, top_k=10,
  num_return_sequences=5, max_new_tokens=...)``.

Queries/s = 35 x passages / seconds (median of interleaved reps).

Same outputs: the plain loop samples from torch's global RNG, ours from a
per-row hash of (seed, docid, language, sample), so sampled texts cannot match
by construction. Where sampling allows a comparison we compare: greedy decoding
(``top_k=1`` vs ``do_sample=False``): the fraction of identical queries; and
ours with the same seed under a different batch size: the fraction identical.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import models
from .common import Result, interleaved, log, median

LANGS = ("ar", "bn", "fi", "ja", "ko", "ru", "te")
N_PER_LANG = 5


def passages(limit: int):
    from xqg_tui.types import Passage

    from .encode import demo_passages

    pairs = demo_passages()
    return [Passage(f"demo-{i:03d}", t, x) for i, (t, x) in enumerate(pairs[:limit])]


def plain_loop(model, tokenizer, items, langs, n: int, max_new_tokens: int, seed: int, greedy: bool = False):
    """The baseline: one ``model.generate`` call per passage and language."""
    from xqg_tui.models.generator import build_prompt

    torch.manual_seed(seed)
    out = []
    with torch.inference_mode():
        for p in items:
            row = {}
            for lang in langs:
                inputs = tokenizer(build_prompt(lang, p.title, p.text), return_tensors="pt", truncation=True,
                                   max_length=512)
                if greedy:
                    ids = model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens)
                else:
                    ids = model.generate(**inputs, do_sample=True, top_k=10, num_return_sequences=n,
                                         max_new_tokens=max_new_tokens)
                row[lang] = [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
            out.append(row)
    return out


def run(quick: bool = False, workdir: Path | None = None) -> list[Result]:
    gen, desc, real = models.generator()
    try:
        bias = gen.model.decoder.cls.predictions.bias
        allowed = int((bias > -5000).sum())
        desc = f"{desc}; {allowed:,} of {bias.numel():,} output ids not blocked"
    except AttributeError:
        pass
    # The stand-in's random decoder never stops early; 24 tokens is a typical question's
    # length. The real generator runs to its end-of-sequence (64 at most, the build default).
    max_new = (4 if quick else 24) if not real else (8 if quick else 64)
    n_pass = 1 if quick else 3
    reps = 1 if quick else 2
    items = passages(n_pass)
    langs = LANGS if not quick else LANGS[:3]  # --quick: a smoke check, not the measurement
    saved = (gen.max_new_tokens, gen.top_k, gen.batch_size)
    gen.max_new_tokens = max_new
    model, tok = models.plain_generator_model()
    results: list[Result] = []
    try:
        log(f"generate: {desc}; {n_pass} passages x {len(langs)} langs x {N_PER_LANG}, max {max_new} new tokens")
        if not quick:  # warm-up (first-call allocations, oneDNN kernels), untimed
            gen.generate(items[:1], LANGS[:1], N_PER_LANG, seed=0)
            plain_loop(model, tok, items[:1], LANGS[:1], N_PER_LANG, max_new, seed=0)
        box: dict = {}
        times = interleaved(
            {
                "ours": lambda: box.__setitem__("ours", gen.generate(items, langs, N_PER_LANG, seed=0)),
                "plain": lambda: box.__setitem__("plain", plain_loop(model, tok, items, langs, N_PER_LANG, max_new, 0)),
            },
            reps=reps, warmup=0,
        )
        nq = n_pass * len(langs) * N_PER_LANG
        ours_qps, base_qps = nq / median(times["ours"]), nq / median(times["plain"])
        produced = sum(len(v) for row in box["ours"] for v in row.values())

        # same outputs where sampling allows
        g_items = items[:1]
        g_langs = langs if not quick else langs[:2]
        gen.top_k = 1
        ours_greedy = gen.generate(g_items, g_langs, 1, seed=0)
        plain_greedy = plain_loop(model, tok, g_items, g_langs, 1, max_new, 0, greedy=True)
        pairs = [(o[l][0], p[l][0]) for o, p in zip(ours_greedy, plain_greedy) for l in g_langs]
        greedy_same = sum(a == b for a, b in pairs) / len(pairs)
        gen.top_k = saved[1]
        gen.batch_size = 3
        r_langs = langs if not quick else langs[:2]
        again = gen.generate(items[:1] if quick else items, r_langs, N_PER_LANG, seed=0)
        gen.batch_size = saved[2]
        flat_a = [q for row in box["ours"][: len(again)] for l in r_langs for q in row[l]]
        flat_b = [q for row in again for l in r_langs for q in row[l]]
        rerun_same = sum(a == b for a, b in zip(flat_a, flat_b)) / max(1, len(flat_a))
        calls = gen.calls
        results.append(Result(
            "generate", ours_qps, base_qps, "plain model.generate loop, one passage x language per call", "queries/s",
            "higher", 4.0,
            note=(f"{desc}; baseline model from AutoModelForSeq2SeqLM.from_pretrained; "
                  f"{n_pass} demo passages x {len(langs)} langs x 5 queries, top-k 10, max {max_new} new tokens, "
                  f"batch {saved[2]} prompts; greedy outputs identical to the plain loop: {greedy_same:.3f}; "
                  f"same seed, other batch size: {rerun_same:.3f} identical"),
            extra={"generator": desc, "real_demo_generator": real, "passages": n_pass, "max_new_tokens": max_new,
                   "queries": produced, "greedy_identical": greedy_same, "rerun_identical_other_batch": rerun_same,
                   "ours_seconds": times["ours"], "baseline_seconds": times["plain"], "calls": calls},
        ))
        results.append(Result(
            "generate-same-output", min(greedy_same, rerun_same), 1.0,
            "identical queries (1 = all)", "fraction", "higher", None, target_on="ours",
            note=("min of: greedy decoding ours vs plain loop, and ours re-run with the same seed in other batches; "
                  "sampled texts of the plain loop use torch's RNG and cannot match"),
        ))
        log(f"generate: {ours_qps:.2f} vs plain {base_qps:.2f} queries/s; greedy same {greedy_same:.3f}, "
            f"rerun same {rerun_same:.3f}")
    finally:
        gen.max_new_tokens, gen.top_k, gen.batch_size = saved
    return results
