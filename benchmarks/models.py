"""Models loaded once per suite run and shared by the sections that need them."""
from __future__ import annotations

from typing import Any

_cache: dict[str, Any] = {}


def encoder(max_passage_length: int = 128):
    import torch

    from xqg_tui.models.encoder import Encoder

    key = f"encoder-{max_passage_length}"
    if key not in _cache:
        _cache[key] = Encoder.load("offline", max_passage_length=max_passage_length, threads=torch.get_num_threads())
    return _cache[key]


def generator():
    """(QueryGenerator, description, is_the_real_demo_generator)."""
    if "generator" not in _cache:
        from .standin import load_generator

        _cache["generator"] = load_generator()
    return _cache["generator"]
