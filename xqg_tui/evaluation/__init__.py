"""Evaluation: XOR-Retrieve R@kt, qrels metrics via ir-measures, paired t-tests, rendering.

No UI imports here; the CLI and the TUI call these functions.
"""
from __future__ import annotations

from .compare import DEFAULT_ALPHA, is_significant, paired_by_id, paired_ttest
from .metrics import DEFAULT_MEASURES, EXTENDED_MEASURES, qrels_metrics_per_query, recall_names
from .report import (
    DEFAULT_K_VALUES,
    Comparison,
    EvalReport,
    compare_reports,
    evaluate,
    render_table,
    to_csv,
    to_markdown,
)
from .rkt import DEFAULT_BUDGETS, TokenCache, budget_name, hits_at_budgets, r_at_kt_per_query, span_answers
from .tokenization import DEFAULT_TOKENIZER, TOKENIZERS, get_word_tokenizer, official_word_tokenize

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_BUDGETS",
    "DEFAULT_K_VALUES",
    "DEFAULT_MEASURES",
    "DEFAULT_TOKENIZER",
    "EXTENDED_MEASURES",
    "TOKENIZERS",
    "Comparison",
    "EvalReport",
    "TokenCache",
    "budget_name",
    "compare_reports",
    "evaluate",
    "get_word_tokenizer",
    "hits_at_budgets",
    "is_significant",
    "official_word_tokenize",
    "paired_by_id",
    "paired_ttest",
    "qrels_metrics_per_query",
    "r_at_kt_per_query",
    "recall_names",
    "render_table",
    "span_answers",
    "to_csv",
    "to_markdown",
]
