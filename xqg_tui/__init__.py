"""xqg-tui: cross-lingual dense retrieval with cross-lingual query generation (xQG).

Public API (imported lazily, so ``import xqg_tui`` stays fast)::

    from xqg_tui import BuildConfig, build_index, Searcher, open_index, evaluate
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "BuildConfig": ("xqg_tui.index.builder", "BuildConfig"),
    "build_index": ("xqg_tui.index.builder", "build_index"),
    "open_index": ("xqg_tui.index.store", "open_index"),
    "Index": ("xqg_tui.index.store", "Index"),
    "FusionSpec": ("xqg_tui.index.fusion", "FusionSpec"),
    "Searcher": ("xqg_tui.search", "Searcher"),
    "SearchResponse": ("xqg_tui.search", "SearchResponse"),
    "Encoder": ("xqg_tui.models.encoder", "Encoder"),
    "QueryGenerator": ("xqg_tui.models.generator", "QueryGenerator"),
    "evaluate": ("xqg_tui.evaluation.report", "evaluate"),
    "compare_reports": ("xqg_tui.evaluation.report", "compare_reports"),
    "Passage": ("xqg_tui.types", "Passage"),
    "Query": ("xqg_tui.types", "Query"),
    "Hit": ("xqg_tui.types", "Hit"),
    "XQGError": ("xqg_tui.errors", "XQGError"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xqg_tui' has no attribute {name!r}")
