"""Readers and writers for every file the project consumes or produces.

All readers raise :class:`xqg_tui.errors.InputError` (one line naming the
file, the line and the field) for a bad input; all writers are atomic.
"""
from __future__ import annotations

from .atomic import (
    atomic_open,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    load_npy,
    save_npy_atomic,
)
from .corpus import iter_corpus, read_corpus, write_corpus_jsonl
from .generated import iter_generated, read_generated, write_generated_jsonl
from .qrels import read_qrels, write_qrels
from .queries import read_queries, write_queries_jsonl
from .runs import read_run, write_run
from .xquad import convert_xquad, xquad_docid

__all__ = [
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "convert_xquad",
    "iter_corpus",
    "iter_generated",
    "load_npy",
    "read_corpus",
    "read_generated",
    "read_qrels",
    "read_queries",
    "read_run",
    "save_npy_atomic",
    "write_corpus_jsonl",
    "write_generated_jsonl",
    "write_qrels",
    "write_queries_jsonl",
    "write_run",
    "xquad_docid",
]
