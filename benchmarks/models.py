"""Models loaded once per suite run and shared by the sections that need them."""
from __future__ import annotations

import time
from typing import Any

_cache: dict[str, Any] = {}
load_seconds: dict[str, float] = {}  # first-load wall time of each model, for the reports


def encoder(max_passage_length: int = 128):
    import torch

    from xqg_tui.models.encoder import Encoder

    key = f"encoder-{max_passage_length}"
    if key not in _cache:
        t0 = time.perf_counter()
        _cache[key] = Encoder.load("offline", max_passage_length=max_passage_length, threads=torch.get_num_threads())
        load_seconds.setdefault("encoder", time.perf_counter() - t0)
    return _cache[key]


def generator():
    """(QueryGenerator, description, is_the_real_demo_generator)."""
    if "generator" not in _cache:
        from .standin import load_generator

        t0 = time.perf_counter()
        _cache["generator"] = load_generator()
        load_seconds["generator"] = time.perf_counter() - t0
    return _cache["generator"]


def plain_generator_model():
    """The baseline's model: the same checkpoint loaded the way a user would
    (``AutoModelForSeq2SeqLM.from_pretrained(folder)``), i.e. without the engine's
    load-time speed-ups (``QueryGenerator.load`` restricts an output layer that blocks
    most of the vocabulary to its allowed rows). For the in-memory stand-in: the
    unmodified model object. Returns (model, tokenizer)."""
    if "plain-generator" not in _cache:
        import torch

        gen, _, real = generator()
        if real and gen.folder is not None:
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            from xqg_tui.models.encoder import quiet_transformers

            with quiet_transformers():
                model = AutoModelForSeq2SeqLM.from_pretrained(str(gen.folder), use_safetensors=True,
                                                              dtype=torch.float32)
                tok = AutoTokenizer.from_pretrained(str(gen.folder))
            model.eval()
            _cache["plain-generator"] = (model, tok)
        else:
            _cache["plain-generator"] = (gen.plain_model, gen.tokenizer)
    return _cache["plain-generator"]
