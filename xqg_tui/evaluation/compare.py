"""Paired significance testing of per-query scores (two-sided paired t-test).

This is the test the xQG paper reports (paired t-test, p < 0.05). The two
degenerate cases scipy answers with NaN are resolved here:

* identical vectors (every difference 0): no evidence of a difference, p = 1.0;
* fewer than two pairs: no test is possible, p = ``None`` (not NaN, so that a
  comparison stays valid JSON). Callers treat ``None`` as "not significant".

When all differences are the same non-zero number the variance is 0 and scipy
gives p = 0.0; that is kept (every query moved the same way).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

DEFAULT_ALPHA = 0.05


def paired_ttest(a: Sequence[float], b: Sequence[float]) -> tuple[float, float | None]:
    """``(mean(b) - mean(a), two-sided p-value)`` of a paired t-test of b against a.

    ``a`` is the baseline, ``b`` the system compared with it, aligned by index.
    An empty input gives ``(0.0, None)``.
    """
    if len(a) != len(b):
        raise ValueError(f"paired test needs equal lengths, got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return 0.0, None
    diffs = [float(y) - float(x) for x, y in zip(a, b)]
    diff_mean = math.fsum(diffs) / n
    if n < 2:
        return diff_mean, None
    if all(d == 0.0 for d in diffs):
        return 0.0, 1.0
    if all(d == diffs[0] for d in diffs):  # zero variance: t is infinite (scipy agrees, with a warning)
        return diff_mean, 0.0
    from scipy import stats  # lazy: scipy.stats costs ~0.8 s to import

    p = float(stats.ttest_rel(b, a).pvalue)
    if math.isnan(p):  # should not happen past the checks above; never leak NaN
        return diff_mean, None
    return diff_mean, p


def paired_by_id(
    base: Mapping[str, float], other: Mapping[str, float]
) -> tuple[list[str], list[float], list[float]]:
    """The ids in both mappings (in ``base``'s order) and their aligned values."""
    ids = [q for q in base if q in other]
    return ids, [float(base[q]) for q in ids], [float(other[q]) for q in ids]


def is_significant(p_value: float | None, alpha: float = DEFAULT_ALPHA) -> bool:
    return p_value is not None and p_value < alpha
