"""``python -m benchmarks.scale_throughput [--quick] [--json OUT]``: throughput at the
paper's model sizes and the cost of the full XOR-TyDi build (issue 9, docs/scale.md).

What is timed, always through the product's own classes (``Encoder.load`` and
``QueryGenerator.load`` of a model folder, i.e. the normal ``from_pretrained`` path):

* **Encoding** with an mBERT-base-shaped ``BertModel`` (12 layers, hidden 768, 12
  heads, FFN 3072, CLS pooling) with random weights, saved by ``save_pretrained`` into a
  temporary folder. Tokenizer: the offline encoder's (multilingual-e5-small =
  XLM-R sentencepiece, 250,002 pieces; the real mBERT WordPiece tokenizer is not
  available offline), so the embedding table has 250,002 rows instead of mBERT's
  119,547: a lookup, the same cost per token. Passages: the demo collection's English
  passages (``{title} {text}``, ~113 words, cut at 128 tokens like ``xqg build``);
  queries: the demo's real questions in the seven languages (cut at 32 tokens).
  float32 and bfloat16, 1 and 2 threads.
* **Generation** with an mT5-base-shaped ``MT5ForConditionalGeneration`` (d_model 768,
  d_ff 2048, gated-GELU, 12+12 layers, 12 heads, vocabulary 250,112, untied output
  layer: 582M parameters, the config of google/mt5-base) with random weights, same
  tokenizer (its ids fit the 250,112 rows). Top-k 10, 5 queries per passage and
  language, batches of 16 prompts (80 rows), prompts as ``xqg build`` makes them
  (max input length 512; the demo passages give ~180 tokens). Random weights never
  stop at EOS by chance, so every row is forced to a fixed length
  (``min_new_tokens = max_new_tokens = L``) measured from the real XOR-TyDi train
  questions (``/work/shared/data``, same tokenizer, +1 for EOS): ``L_mean`` (mean over
  the languages) and ``L_batch`` (expected longest row of a 80-row batch of one
  language: ``model.generate`` runs a batch until its last row ends). The encoder part
  of each batch is timed separately (a forward hook), so the time at ``L_batch`` is
  ``T_encoder + L_batch x T_step`` from the same measurement.
* **Storage**: bytes per passage of every file of the index format, computed from
  the layout (``xqg_tui/index/format.py``) and checked against real small indexes
  written by ``build_index`` (demo passages and generated queries, random unit vectors
  of D=768 and D=384 from a stand-in encoder), for ``--store full`` and ``--store
  sums`` (when the build supports it), float32 and float16.

Each figure is the best of several repeats (the machine is shared: the best repeat is
the one least disturbed); the 1-minute load average before and after each one is in
the JSON. Rows are printed like ``python -m benchmarks`` (ours, a baseline from the
same run, the ratio): the 2-thread figures against 1 thread (thread scaling) and
bfloat16 against float32. Then the full-scale estimate (18,003,200 passages x 35
queries) is printed as markdown tables (``--markdown`` writes them to a file).

``--quick`` runs the same code on tiny model shapes (2 layers, hidden 64) and a few
texts, float32 only, in under a minute on a quiet machine: a smoke check, its
figures mean nothing.
"""
from __future__ import annotations

import argparse
import os
import sys

# Thread pools read these once, at import: the most threads any measurement uses.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

from .common import Result, load_average, log, machine_info  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LANGS = ("ar", "bn", "fi", "ja", "ko", "ru", "te")
PER_LANG = 5
XOR_PASSAGES = 18_003_200  # English passages of XOR-TyDi's retrieval corpus (enwiki_20190201_w100.tsv)
XOR_COLLECTION_BYTES = 13e9  # "Collection (13G)" in the XOR-TyDi README: TSV of that corpus
XOR_TRAIN = Path(os.environ.get("XQG_XOR_TRAIN", ROOT.parent / "shared" / "data" / "xor-tydi" / "xor_train_retrieve_eng_span.jsonl"))
MAX_PASSAGE_LEN = 128
MAX_QUERY_LEN = 32
GEN_BATCH = 16  # prompts per generate() batch: xqg build's --gen-batch-size default
GEN_MAX_INPUT = 512  # QueryGenerator's max_input_length default (what xqg build uses)
PRODUCT_MAX_NEW_TOKENS = 64  # xqg build's default cap

MBERT = {"layers": 12, "hidden": 768, "heads": 12, "ffn": 3072, "vocab": 119_547}
MT5 = {"d_model": 768, "d_ff": 2048, "layers": 12, "heads": 12, "d_kv": 64, "vocab": 250_112}
QUICK_MBERT = {"layers": 2, "hidden": 64, "heads": 2, "ffn": 128, "vocab": 119_547}
QUICK_MT5 = {"d_model": 64, "d_ff": 128, "layers": 2, "heads": 2, "d_kv": 32, "vocab": 250_112}

# ---------------------------------------------------------------- inputs


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def demo_passages() -> list[Any]:
    from xqg_tui.paths import demo_dir
    from xqg_tui.types import Passage

    rows = _jsonl(demo_dir() / "corpus.jsonl")
    return [Passage(str(r["docid"]), str(r.get("title", "")), str(r["text"])) for r in rows]


def demo_questions(per_lang: int) -> list[str]:
    """Real short questions, ``per_lang`` of each of the seven languages, interleaved."""
    from xqg_tui.paths import demo_dir

    by: dict[str, list[str]] = {lang: [] for lang in LANGS}
    for r in _jsonl(demo_dir() / "queries.train.jsonl"):
        lang = str(r.get("lang", "")).strip()
        if lang in by:
            by[lang].append(str(r["question"]))
    out = []
    for i in range(per_lang):
        for lang in LANGS:
            if by[lang]:
                out.append(by[lang][i % len(by[lang])])
    return out


def question_lengths(tokenizer: Any, batch_rows: int = GEN_BATCH * PER_LANG, seed: int = 0) -> dict[str, Any]:
    """Tokens per real XOR-TyDi train question (+1 for EOS) per language, with the
    expected longest of ``batch_rows`` draws (a generate() batch is one language)."""
    if not XOR_TRAIN.exists():
        log(f"scale: {XOR_TRAIN} not found; using the demo questions for the output length")
        from xqg_tui.paths import demo_dir

        rows = _jsonl(demo_dir() / "queries.train.jsonl")
        source = "assets/demo/queries.train.jsonl"
    else:
        rows = _jsonl(XOR_TRAIN)
        source = str(XOR_TRAIN)
    by: dict[str, list[str]] = {}
    for r in rows:
        by.setdefault(str(r.get("lang", "")).strip(), []).append(str(r["question"]))
    rng = np.random.default_rng(seed)
    per: dict[str, dict[str, float]] = {}
    for lang in LANGS:
        qs = by.get(lang, [])
        if not qs:
            continue
        n = np.asarray([len(x) for x in tokenizer(qs, add_special_tokens=False)["input_ids"]]) + 1
        n = np.minimum(n, PRODUCT_MAX_NEW_TOKENS)
        batch_max = float(np.mean([rng.choice(n, batch_rows).max() for _ in range(500)]))
        per[lang] = {"questions": len(qs), "mean": float(n.mean()), "p50": float(np.percentile(n, 50)),
                     "p90": float(np.percentile(n, 90)), "expected_batch_max": batch_max}
    mean = float(np.mean([v["mean"] for v in per.values()]))
    batch = float(np.mean([v["expected_batch_max"] for v in per.values()]))
    return {"source": source, "per_lang": per, "mean": mean, "batch_max": batch,
            "L_mean": int(round(mean)), "L_batch": int(round(batch)), "batch_rows": batch_rows}


# ---------------------------------------------------------------- models


def _fill_random(model: Any, seed: int) -> None:
    """Seeded random weights, fast: 2-D weights N(0, 1/fan_in), norms 1, biases 0."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
            elif "norm" in name.lower() and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()


def _build(cls: Any, config: Any, seed: int) -> Any:
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older transformers
        import torch

        torch.manual_seed(seed)
        return cls(config)
    with no_init_weights():
        model = cls(config)
    _fill_random(model, seed)
    return model


def save_mbert(folder: Path, tokenizer: Any, shape: dict[str, int], seed: int = 0) -> dict[str, Any]:
    """A random mBERT-shaped encoder folder (CLS pooling, no prefix: the defaults of
    ``Encoder.load`` for a folder that declares nothing, i.e. the paper's encoder)."""
    from transformers import BertConfig, BertModel

    vocab = max(shape["vocab"], len(tokenizer))
    config = BertConfig(vocab_size=vocab, hidden_size=shape["hidden"], num_hidden_layers=shape["layers"],
                        num_attention_heads=shape["heads"], intermediate_size=shape["ffn"],
                        max_position_embeddings=512, type_vocab_size=2,
                        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    model = _build(lambda c: BertModel(c, add_pooling_layer=False), config, seed)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    del model
    return {"params": params, "vocab_rows": vocab, **shape}


def save_mt5(folder: Path, tokenizer: Any, shape: dict[str, int], seed: int = 0) -> dict[str, Any]:
    """A random mT5-shaped generator folder: google/mt5-base's config (untied output layer)."""
    from transformers import MT5Config, MT5ForConditionalGeneration

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    config = MT5Config(vocab_size=shape["vocab"], d_model=shape["d_model"], d_kv=shape["d_kv"], d_ff=shape["d_ff"],
                       num_layers=shape["layers"], num_decoder_layers=shape["layers"], num_heads=shape["heads"],
                       feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
                       pad_token_id=pad, eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=pad)
    config.tie_word_embeddings = False  # mT5 does not tie; transformers 5 ignores the keyword
    model = _build(MT5ForConditionalGeneration, config, seed)
    tied = model.lm_head.weight.data_ptr() == model.shared.weight.data_ptr()
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    del model
    return {"params": params, "tied_output_layer": tied, **shape}


def bf16_supported() -> bool:
    import torch

    try:
        a = torch.randn(8, 8, dtype=torch.bfloat16)
        (a @ a).float().sum().item()
        return True
    except Exception:
        return False


# ---------------------------------------------------------------- timing


def best_of(fn: Callable[[], Any], reps: int, items: int, budget_s: float | None = None,
            min_reps: int = 2) -> dict[str, Any]:
    """Best (fastest) of ``reps`` calls, each with the 1-minute load average before and
    after it; stops early (after at least ``min_reps``) once ``budget_s`` is spent."""
    import gc

    seconds, loads = [], []
    t_all = time.perf_counter()
    for rep in range(reps):
        gc.collect()
        before = load_average()
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)
        loads.append({"before": before, "after": load_average()})
        if budget_s is not None and rep + 1 >= min_reps and time.perf_counter() - t_all > budget_s:
            break
    best = min(seconds)
    return {"items": items, "best_s": best, "rate": items / best, "seconds": seconds, "load": loads,
            "load_1min_max": max(max(x["before"][0], x["after"][0]) for x in loads) if loads[0]["before"] else None}


def _load_text(m: dict[str, Any]) -> str:
    lo = [x["before"][0] for x in m["load"]] + [x["after"][0] for x in m["load"]]
    return f"load {min(lo):.1f}-{max(lo):.1f}" if m["load"] and m["load"][0]["before"] else "load ?"


# ---------------------------------------------------------------- encoding


def measure_encoding(folder: Path, quick: bool, bf16: bool) -> dict[str, Any]:
    import torch

    from xqg_tui.models.encoder import Encoder

    passages = demo_passages()
    n_pass = {2: 4, 1: 4} if quick else {2: 64, 1: 32}
    n_quer = {2: 7, 1: 7} if quick else {2: 224, 1: 112}
    questions = demo_questions(max(n_quer.values()) // len(LANGS))
    reps = 1 if quick else 3
    out: dict[str, Any] = {}
    for dtype in ("float32", "bfloat16") if bf16 else ("float32",):
        enc = Encoder.load(str(folder), dtype=dtype, threads=2, max_passage_length=MAX_PASSAGE_LEN,
                           max_query_length=MAX_QUERY_LEN, batch_size=32)
        if "tokens" not in out:
            ptoks = [min(len(x), MAX_PASSAGE_LEN) for x in enc.tokenizer(
                [f"{p.title} {p.text}" for p in passages[: n_pass[2]]])["input_ids"]]
            qtoks = [min(len(x), MAX_QUERY_LEN) for x in enc.tokenizer(questions)["input_ids"]]
            out["tokens"] = {"passage_mean": float(np.mean(ptoks)), "query_mean": float(np.mean(qtoks)),
                             "query_max": int(max(qtoks))}
            log(f"scale: passages {np.mean(ptoks):.0f} tokens, queries {np.mean(qtoks):.1f} tokens on average")
        enc.encode_passages(passages[:2])  # warm-up (oneDNN primitives, allocator)
        enc.encode_queries(questions[:4])
        for threads in (1, 2):
            torch.set_num_threads(threads)
            ps = passages[: n_pass[threads]]
            qs = questions[: n_quer[threads]]
            m_p = best_of(lambda: enc.encode_passages(ps), reps, len(ps), budget_s=60)
            m_q = best_of(lambda: enc.encode_queries(qs), reps, len(qs), budget_s=30)
            out[f"passages-{dtype}-{threads}t"] = m_p
            out[f"queries-{dtype}-{threads}t"] = m_q
            log(f"scale: encode {dtype} {threads}t: {m_p['rate']:.2f} passages/s ({_load_text(m_p)}), "
                f"{m_q['rate']:.1f} queries/s ({_load_text(m_q)})")
        torch.set_num_threads(2)
        del enc
    return out


# ---------------------------------------------------------------- generation


def measure_generation(folder: Path, lengths: dict[str, Any], quick: bool, bf16: bool) -> dict[str, Any]:
    import torch

    from xqg_tui.models.generator import QueryGenerator

    passages = demo_passages()
    L = 3 if quick else lengths["L_mean"]
    prompts = 1 if quick else GEN_BATCH
    reps = 1 if quick else 2
    out: dict[str, Any] = {"L": L, "prompts_per_batch": prompts}
    torch.set_num_threads(2)
    for dtype in ("float32", "bfloat16") if bf16 else ("float32",):
        gen = QueryGenerator.load(str(folder), top_k=10, max_new_tokens=L, batch_size=GEN_BATCH,
                                  max_input_length=GEN_MAX_INPUT, dtype=dtype, threads=2)
        gen.model.generation_config.min_new_tokens = L  # random weights: every row runs L steps
        shapes: list[tuple[int, ...]] = []
        enc_seconds: list[float] = []
        original = gen._generate_batch

        def recorded(*a: Any, _orig: Any = original, **k: Any) -> Any:
            result = _orig(*a, **k)
            shapes.append(tuple(result.shape))
            return result

        gen._generate_batch = recorded  # type: ignore[method-assign]
        encoder = gen.model.get_encoder()
        t_enc: dict[str, float] = {}
        h1 = encoder.register_forward_pre_hook(lambda *_: t_enc.__setitem__("t0", time.perf_counter()))
        h2 = encoder.register_forward_hook(lambda *_: enc_seconds.append(time.perf_counter() - t_enc["t0"]))
        gen.generate(passages[:1], ["ja"], n=PER_LANG, seed=99)  # warm-up
        enc_seconds.clear()
        shapes.clear()
        prompt_tokens = [len(x) for x in gen.tokenizer(
            [f"Generate a Japanese question for this passage: {p.title} {p.text}" for p in passages[:prompts]])["input_ids"]]
        counter = iter(range(1000))

        def one_batch() -> None:
            i = next(counter)
            gen.generate(passages[:prompts], [LANGS[i % len(LANGS)]], n=PER_LANG, seed=i)

        m = best_of(one_batch, reps, prompts * PER_LANG, budget_s=120 if dtype == "float32" else 60, min_reps=1)
        h1.remove()
        h2.remove()
        best_i = int(np.argmin(m["seconds"]))
        new_tokens = shapes[best_i][1] - 1  # the decoder start token is the first column
        t_enc_best = enc_seconds[best_i]
        t_step = (m["best_s"] - t_enc_best) / max(1, new_tokens)
        m.update({"rows": shapes[best_i][0], "new_tokens_per_row": new_tokens, "encoder_s": t_enc_best,
                  "step_s": t_step, "prompt_tokens_mean": float(np.mean(prompt_tokens)),
                  "encoder_seconds": enc_seconds})
        if not quick:
            lb = lengths["L_batch"]
            m["rate_at_L_batch"] = m["items"] / (t_enc_best + lb * t_step)
            m["L_batch"] = lb
        out[dtype] = m
        log(f"scale: generate {dtype} 2t: {m['rate']:.2f} queries/s at {new_tokens} tokens per query "
            f"({m['rows']} rows, encoder {t_enc_best:.1f} s + {new_tokens} x {t_step:.2f} s; {_load_text(m)})")
        del gen, encoder
    return out


# ---------------------------------------------------------------- storage


class _RandomEncoder:
    """Seeded random unit vectors per text (the layout, not the model, is measured)."""

    normalize = True

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.calls = 0

    def _vecs(self, texts: list[str]) -> np.ndarray:
        import hashlib

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out

    def encode_passages(self, passages: Any, **_: Any) -> np.ndarray:
        self.calls += 1
        return self._vecs([getattr(p, "text", str(p)) for p in passages])

    def encode_queries(self, texts: Any, **_: Any) -> np.ndarray:
        self.calls += 1
        return self._vecs(["q:" + t for t in texts])

    def fingerprint(self) -> dict[str, Any]:
        return {"model_id": f"random-{self.dim}", "dim": self.dim, "normalize": True, "pooling": "mean",
                "query_prefix": "", "passage_prefix": ""}


def layout_bytes(store: str, dim: int, itemsize: int, langs: int = len(LANGS), per_lang: int = PER_LANG) -> dict[str, float]:
    """Vector bytes per passage of each file of the index format (npy headers, 128 bytes
    a file, left out: nothing per passage)."""
    rows = {"passage_vectors": dim * itemsize, "fused_vectors": dim * itemsize, "query_counts": langs * 4}
    if store == "full":
        rows["query_vectors"] = langs * per_lang * dim * itemsize  # (N, NMAX=n, D) per language
    else:
        rows["query_sums"] = langs * dim * itemsize  # (N, D) per language
    rows["vectors_total"] = float(sum(rows.values()))
    return rows


def measure_storage(workdir: Path | None, quick: bool) -> dict[str, Any]:
    """Formula bytes per passage vs real indexes written by ``build_index``."""
    import dataclasses

    from xqg_tui.index.builder import BuildConfig, build_index
    from xqg_tui.paths import demo_dir

    n = 20 if quick else 150
    tmp = Path(tempfile.mkdtemp(prefix="xqg-scale-storage-", dir=workdir))
    stores = ["full"]
    if "store" in {f.name for f in dataclasses.fields(BuildConfig)}:
        stores.append("sums")
    out: dict[str, Any] = {"passages": n, "checked": {}}
    try:
        corpus, generated = tmp / "corpus.jsonl", tmp / "generated.jsonl"
        corpus.write_text("".join((demo_dir() / "corpus.jsonl").read_text(encoding="utf-8").splitlines(True)[:n]), encoding="utf-8")
        gen_rows = _jsonl(demo_dir() / "generated.jsonl")[:n]
        # every passage gets exactly 5 per language (the demo file misses a few ja queries)
        for r in gen_rows:
            for lang in LANGS:
                qs = [q for q in r["generated_queries"].get(lang, []) if q.strip()] or ["?"]
                r["generated_queries"][lang] = (qs * PER_LANG)[:PER_LANG]
        generated.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in gen_rows), encoding="utf-8")
        dims = (768, 384)
        for store in stores:
            for dtype in ("float32", "float16"):
                for dim in dims:
                    key = f"{store}-{dtype}-{dim}"
                    idx = tmp / key
                    kwargs: dict[str, Any] = {"store": store} if "sums" in stores else {}
                    try:
                        build_index(BuildConfig(corpus=corpus, out=idx, encoder="random", import_generated=generated,
                                                dtype=dtype, chunk_size=64, **kwargs), encoder=_RandomEncoder(dim))
                    except Exception as exc:  # a store still being built by others: report, go on
                        log(f"scale: storage {key} not built ({type(exc).__name__}: {exc})")
                        out["checked"][key] = {"error": f"{type(exc).__name__}: {exc}"}
                        continue
                    manifest = json.loads((idx / "manifest.json").read_text(encoding="utf-8"))
                    data = idx / manifest["data_dir"]
                    files: dict[str, int] = {}
                    for p in data.rglob("*"):
                        if p.is_file():
                            top = p.relative_to(data).parts[0]
                            files[top] = files.get(top, 0) + p.stat().st_size
                    vec = sum(v for k, v in files.items() if k.endswith(".npy") or "." not in k)
                    formula = layout_bytes(store, dim, 4 if dtype == "float32" else 2)["vectors_total"]
                    out["checked"][key] = {
                        "files_bytes_per_passage": {k: v / n for k, v in sorted(files.items())},
                        "vectors_bytes_per_passage": vec / n, "formula_vectors_bytes_per_passage": formula,
                        "formula_error": vec / n / formula - 1,
                        "passages_jsonl_bytes_per_passage": files.get("passages.jsonl", 0) / n,
                        "generated_jsonl_bytes_per_passage": files.get("generated.jsonl", 0) / n,
                        "manifest_store": manifest.get("store", "full"),
                    }
                    log(f"scale: storage {key}: {vec / n:,.0f} B of vectors per passage on disk, "
                        f"formula {formula:,.0f} ({(vec / n / formula - 1) * 100:+.2f}%: npy headers)")
                    shutil.rmtree(idx, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    texts = [v for v in out["checked"].values() if "passages_jsonl_bytes_per_passage" in v]
    out["text_bytes_per_passage"] = {
        "passages_jsonl": texts[0]["passages_jsonl_bytes_per_passage"] if texts else None,
        "generated_jsonl": texts[0]["generated_jsonl_bytes_per_passage"] if texts else None,
        "xor_tydi_collection_tsv": XOR_COLLECTION_BYTES / XOR_PASSAGES,
    }
    return out


# ---------------------------------------------------------------- estimate


def estimate(enc: dict[str, Any], gen: dict[str, Any], storage: dict[str, Any], lengths: dict[str, Any],
             cores: tuple[int, ...] = (16, 64, 256, 1024)) -> dict[str, Any]:
    """Core-hours and wall hours for 18,003,200 passages x 35 queries, disk and RAM.

    Core-seconds per item = threads / rate (a 2-thread figure costs 2 cores); the
    cheaper of the 1- and 2-thread figures is used (``xqg build --engine ray`` runs one
    model actor per CPU set, so N cores run N / threads independent actors). Wall
    hours on N cores assume that independence (no shared memory bandwidth limit)."""
    n = XOR_PASSAGES
    q = n * len(LANGS) * PER_LANG
    out: dict[str, Any] = {"passages": n, "queries": q, "cores": list(cores), "stages": {}}

    def core_s(kind: str, dtype: str) -> tuple[float, str] | None:
        best = None
        for t in (1, 2):
            m = enc.get(f"{kind}-{dtype}-{t}t")
            if m:
                c = t / m["rate"]
                if best is None or c < best[0]:
                    best = (c, f"{t} thread{'s' if t > 1 else ''}")
        return best

    for dtype in ("float32", "bfloat16"):
        p = core_s("passages", dtype)
        qq = core_s("queries", dtype)
        g = gen.get(dtype)
        if not (p and qq and g):
            continue
        g_mean = 2 / g["rate"]
        g_batch = 2 / g.get("rate_at_L_batch", g["rate"])
        stages = {
            "encode_passages": {"items": n, "core_s_per_item": p[0], "from": p[1]},
            "generate_queries_L_mean": {"items": q, "core_s_per_item": g_mean, "from": f"2 threads, {g['new_tokens_per_row']} tokens per query"},
            "generate_queries_L_batch": {"items": q, "core_s_per_item": g_batch, "from": f"2 threads, {g.get('L_batch', g['new_tokens_per_row'])} tokens per query (batch padding)"},
            "encode_queries": {"items": q, "core_s_per_item": qq[0], "from": qq[1]},
        }
        for s in stages.values():
            s["core_hours"] = s["items"] * s["core_s_per_item"] / 3600
            s["wall_hours"] = {c: s["core_hours"] / c for c in cores}
        total = sum(stages[k]["core_hours"] for k in ("encode_passages", "generate_queries_L_batch", "encode_queries"))
        out["stages"][dtype] = {"stages": stages, "total_core_hours": total,
                                "total_wall_hours": {c: total / c for c in cores}}
    disk: dict[str, Any] = {}
    text = storage.get("text_bytes_per_passage", {})
    t_pass = text.get("xor_tydi_collection_tsv") or 0
    t_gen = text.get("generated_jsonl") or 0
    for store in ("full", "sums"):
        for dtype, item in (("float32", 4), ("float16", 2)):
            for dim in (768, 384):
                per = layout_bytes(store, dim, item)["vectors_total"]
                per_all = per + t_pass + t_gen
                disk[f"{store}-{dtype}-{dim}"] = {"vector_bytes_per_passage": per, "bytes_per_passage_with_text": per_all,
                                                  "vectors_tb": per * n / 1e12, "total_tb": per_all * n / 1e12}
    out["disk"] = disk
    ram: dict[str, Any] = {}
    for dim in (768, 384):
        nlist = int(4 * math.sqrt(n))  # xqg ann build's default (index/ann.py)
        ram[dim] = {
            # what a Searcher keeps in RAM when everything fits its budget: float32
            # passage matrix + 7 per-language aggregates + the fused matrix
            "searcher_in_ram_float32_gb": 9 * dim * 4 * n / 1e9,
            "fused_matrix_float32_gb": dim * 4 * n / 1e9,
            "fused_matrix_float16_gb": dim * 2 * n / 1e9,
            # exact search in row blocks: bounded by XQG_SEARCH_MEMORY (default min(4 GiB, RAM/2))
            "block_search_budget_gb": 4 * 2**30 / 1e9,
            # bytes read per full scan of P + the 7 language parts (sums store / full store), float32 files
            "block_scan_sums_float32_tb": (1 + len(LANGS)) * dim * 4 * n / 1e12,
            "block_scan_full_float32_tb": (1 + len(LANGS) * PER_LANG) * dim * 4 * n / 1e12,
            # IVF-PQ defaults: m = 64 sub-quantizers x 8 bits, nlist ~ 4 sqrt(N); codes + int64 ids + centroids
            "ivfpq_nlist": nlist,
            "ivfpq_gb": ((64 + 8) * n + nlist * dim * 4) / 1e9,
            # HNSW defaults: IndexHNSWFlat, M = 32: float32 vectors + 2M level-0 links (int32)
            "hnsw_flat_m32_gb": (dim * 4 + 2 * 32 * 4) * n / 1e9,
        }
    out["ram"] = ram
    out["lengths"] = {"L_mean": lengths["L_mean"], "L_batch": lengths["L_batch"]}
    return out


# ---------------------------------------------------------------- reporting


def results_rows(enc: dict[str, Any], gen: dict[str, Any]) -> list[Result]:
    rows: list[Result] = []
    for kind, unit in (("passages", "passages/s"), ("queries", "queries/s")):
        for dtype in ("float32", "bfloat16"):
            for t in (1, 2):
                m = enc.get(f"{kind}-{dtype}-{t}t")
                if not m:
                    continue
                if t == 2:
                    base, base_name = enc[f"{kind}-{dtype}-1t"]["rate"], "same, 1 thread"
                elif dtype == "bfloat16":
                    base, base_name = enc[f"{kind}-float32-1t"]["rate"], "float32, 1 thread"
                else:
                    base, base_name = None, "-"
                rows.append(Result(
                    f"scale-encode-{kind}-{'fp32' if dtype == 'float32' else 'bf16'}-{t}t", m["rate"], base, base_name,
                    unit, "higher", None,
                    note=(f"mBERT-base shape, {m['items']} {kind}, best of {len(m['seconds'])}, {_load_text(m)}"),
                    extra={k: v for k, v in m.items() if k in ("seconds", "load", "items")},
                ))
    for dtype in ("float32", "bfloat16"):
        m = gen.get(dtype)
        if not m:
            continue
        base = gen["float32"]["rate"] if dtype == "bfloat16" else None
        rows.append(Result(
            f"scale-generate-{'fp32' if dtype == 'float32' else 'bf16'}-2t", m["rate"], base,
            "float32, 2 threads" if base else "-", "queries/s", "higher", None,
            note=(f"mT5-base shape, {m['rows']} rows x {m['new_tokens_per_row']} tokens, best of {len(m['seconds'])}, "
                  f"{_load_text(m)}"),
            extra={k: v for k, v in m.items() if k in ("seconds", "load", "encoder_s", "step_s", "rate_at_L_batch")},
        ))
    return rows


def _f(x: float, digits: int = 3) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def markdown(data: dict[str, Any]) -> str:
    enc, gen, est, storage = data["encoding"], data["generation"], data["estimate"], data["storage"]
    lines = ["### Throughput (measured)", "",
             "| stage | dtype | threads | rate | best of | load (1-min) during |", "|---|---|---:|---:|---:|---|"]
    for kind, unit in (("passages", "passages/s"), ("queries", "queries/s")):
        for dtype in ("float32", "bfloat16"):
            for t in (1, 2):
                m = enc.get(f"{kind}-{dtype}-{t}t")
                if m:
                    lines.append(f"| encode {kind} | {dtype} | {t} | {_f(m['rate'])} {unit} | {len(m['seconds'])} | {_load_text(m)[5:]} |")
    for dtype in ("float32", "bfloat16"):
        m = gen.get(dtype)
        if m:
            lines.append(f"| generate ({m['new_tokens_per_row']} tokens/query) | {dtype} | 2 | {_f(m['rate'])} queries/s "
                         f"| {len(m['seconds'])} | {_load_text(m)[5:]} |")
            if "rate_at_L_batch" in m:
                lines.append(f"| generate ({m['L_batch']} tokens/query, derived) | {dtype} | 2 | "
                             f"{_f(m['rate_at_L_batch'])} queries/s | - | same run |")
    lines += ["", "### Storage per passage (vector files; computed, checked on disk)", "",
              "| store | dtype | D | bytes/passage (formula) | on disk (150 demo passages) |", "|---|---|---:|---:|---:|"]
    for key, v in storage["checked"].items():
        store, dtype, dim = key.split("-")
        if "error" in v:
            lines.append(f"| {store} | {dtype} | {dim} | {layout_bytes(store, int(dim), 4 if dtype == 'float32' else 2)['vectors_total']:,.0f} | not built: {v['error'][:60]} |")
        else:
            lines.append(f"| {store} | {dtype} | {dim} | {v['formula_vectors_bytes_per_passage']:,.0f} | {v['vectors_bytes_per_passage']:,.0f} |")
    lines += ["", "### Full XOR-TyDi estimate", "",
              f"{est['passages']:,} passages, {est['queries']:,} queries.", "",
              "| stage | dtype | core-s/item | core-hours | " + " | ".join(f"wall h on {c} cores" for c in est["cores"]) + " |",
              "|---|---|---:|---:|" + "---:|" * len(est["cores"])]
    for dtype, s in est["stages"].items():
        for name, st in s["stages"].items():
            lines.append(f"| {name} | {dtype} | {_f(st['core_s_per_item'])} | {_f(st['core_hours'])} | "
                         + " | ".join(_f(st['wall_hours'][c]) for c in est["cores"]) + " |")
        lines.append(f"| **total** (L_batch) | {dtype} | | {_f(s['total_core_hours'])} | "
                     + " | ".join(_f(s['total_wall_hours'][c]) for c in est["cores"]) + " |")
    lines += ["", "| store | dtype | D | vectors B/passage | with text B/passage | vectors TB | total TB |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for key, v in est["disk"].items():
        store, dtype, dim = key.split("-")
        lines.append(f"| {store} | {dtype} | {dim} | {v['vector_bytes_per_passage']:,.0f} | {v['bytes_per_passage_with_text']:,.0f} "
                     f"| {v['vectors_tb']:.2f} | {v['total_tb']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale_throughput", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny model shapes, a few texts (smoke check, < 1 minute)")
    p.add_argument("--json", metavar="OUT", help="write machine facts, measurements and the estimate as JSON")
    p.add_argument("--markdown", metavar="FILE", help="also write the markdown tables to FILE")
    p.add_argument("--workdir", metavar="DIR", default=None, help="scratch folder for the model folders (default: system temp)")
    p.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 measurements")
    p.add_argument("--only", default=None, help="comma-separated subset of encode,generate,storage")
    p.add_argument("--from-json", metavar="FILE", default=None,
                   help="measure nothing: recompute the estimate and tables from a saved --json file")
    args = p.parse_args(argv)
    if args.from_json:
        return _from_json(Path(args.from_json), args)

    import torch
    from transformers import AutoTokenizer

    from xqg_tui.models.encoder import quiet_transformers
    from xqg_tui.models.offline import prepare_offline_encoder

    from . import report

    t_start = time.perf_counter()
    workdir = Path(args.workdir) if args.workdir else None
    if workdir:
        workdir.mkdir(parents=True, exist_ok=True)
    only = set((args.only or "encode,generate,storage").split(","))
    torch.set_num_threads(2)
    machine = machine_info(2)
    log(f"scale: {machine['cores']} cores, {machine['cpu_model']}, load {machine['load_average_start']}")
    bf16 = not args.no_bf16 and not args.quick and bf16_supported()  # --quick: float32 only
    tmp = Path(tempfile.mkdtemp(prefix="xqg-scale-models-", dir=workdir))
    seconds: dict[str, float] = {}
    data: dict[str, Any] = {"encoding": {}, "generation": {}, "storage": {"checked": {}}}
    try:
        tok_folder = prepare_offline_encoder()
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(tok_folder))
        lengths = question_lengths(tokenizer)
        log(f"scale: real question length {lengths['mean']:.1f} tokens (L_mean {lengths['L_mean']}), "
            f"longest of a {lengths['batch_rows']}-row batch {lengths['batch_max']:.1f} (L_batch {lengths['L_batch']})")
        shapes: dict[str, Any] = {}
        if "encode" in only:
            t0 = time.perf_counter()
            with quiet_transformers():
                shapes["encoder"] = save_mbert(tmp / "mbert", tokenizer, QUICK_MBERT if args.quick else MBERT)
                data["encoding"] = measure_encoding(tmp / "mbert", args.quick, bf16)
            shutil.rmtree(tmp / "mbert", ignore_errors=True)
            seconds["encode"] = time.perf_counter() - t0
        if "generate" in only:
            t0 = time.perf_counter()
            with quiet_transformers():
                shapes["generator"] = save_mt5(tmp / "mt5", tokenizer, QUICK_MT5 if args.quick else MT5)
                log(f"scale: mT5 folder saved ({shapes['generator']['params'] / 1e6:.0f}M parameters)")
                data["generation"] = measure_generation(tmp / "mt5", lengths, args.quick, bf16)
            shutil.rmtree(tmp / "mt5", ignore_errors=True)
            seconds["generate"] = time.perf_counter() - t0
        if "storage" in only:
            t0 = time.perf_counter()
            data["storage"] = measure_storage(workdir, args.quick)
            seconds["storage"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    data["estimate"] = estimate(data["encoding"], data["generation"], data["storage"], lengths)
    machine["load_average_end"] = load_average()
    results = results_rows(data["encoding"], data["generation"])
    for r in results:
        print(report.line(r), flush=True)
    text = markdown(data)
    print(text)
    total = time.perf_counter() - t_start
    meta = {"quick": args.quick, "bf16": bf16, "shapes": shapes, "question_lengths": lengths,
            "tokenizer": f"{tok_folder} (XLM-R sentencepiece, {len(tokenizer):,} pieces)",
            "section_seconds": {k: round(v, 1) for k, v in seconds.items()}, "total_seconds": round(total, 1)}
    if args.json:
        payload = {"machine": machine, "meta": meta, "results": [r.to_json() for r in results], **data}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        log(f"wrote {args.json}")
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    log(f"scale: done in {total:.0f} s")
    return 0


def _from_json(path: Path, args: argparse.Namespace) -> int:
    saved = json.loads(path.read_text(encoding="utf-8"))
    data = {k: saved[k] for k in ("encoding", "generation", "storage")}
    data["estimate"] = estimate(data["encoding"], data["generation"], data["storage"], saved["meta"]["question_lengths"])
    text = markdown(data)
    print(text)
    if args.json:
        saved["estimate"] = data["estimate"]
        Path(args.json).write_text(json.dumps(saved, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    return 0


def run(quick: bool = False, workdir: Path | None = None) -> list[Result]:
    """Hook for ``python -m benchmarks`` (a section would only need this)."""
    import io
    from contextlib import redirect_stdout

    out = Path(tempfile.mkdtemp(prefix="xqg-scale-json-", dir=workdir)) / "scale.json"
    with redirect_stdout(io.StringIO()):
        main((["--quick"] if quick else []) + ["--json", str(out)] + (["--workdir", str(workdir)] if workdir else []))
    data = json.loads(out.read_text(encoding="utf-8"))
    shutil.rmtree(out.parent, ignore_errors=True)
    from .report import results_from_json  # noqa: F401  (same row format)

    return [Result(name=r["name"], ours=r["ours"], baseline=r["baseline"], baseline_name=r["baseline_name"],
                   unit=r["unit"], better=r["better"], note=r.get("note", "")) for r in data["results"]]


if __name__ == "__main__":
    sys.exit(main())
