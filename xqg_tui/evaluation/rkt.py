"""XOR-Retrieve answer recall R@2kt / R@5kt, computed as the official script does.

``eval_xor_retrieve.py`` (XOR-TyDi QA, Asai et al. 2021), per query:

1. ``span_answers`` = the answers that are not exactly ``"yes"`` or ``"no"``;
   a query without any is skipped (it is not counted at all);
2. the ranked passages are word-tokenised with ``nltk.word_tokenize`` and the
   tokens concatenated in rank order, stopping once there are at least
   ``max_token_num`` of them, then cut to exactly ``max_token_num``;
3. the tokens are joined with single spaces, and the query is a hit when any
   span answer is a (case-sensitive) substring of that string.

It runs with ``max_token_num`` = 2000 and 5000. Because the kept tokens are a
prefix of the whole concatenation, one pass up to the largest budget serves
every budget.

What a passage contributes is its *text only*: the official prediction format
is ``{"id", "lang", "ctxs": [passage text, ...]}`` and its converter from
DPR-style results reads ``ctx["text"]``, so titles are never tokenised.

Two deliberate departures from the script, both about what counts, never about
the maths: a query with span answers but no run entry counts as a miss (the
script only walks the prediction file, which has every test query), and the
passages are taken in the run's list order (rank order), not re-sorted by score.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Union

from ..errors import XQGError
from ..types import Query, Run
from .tokenization import DEFAULT_TOKENIZER, WordTokenizer, get_word_tokenizer

DEFAULT_BUDGETS: tuple[int, ...] = (2000, 5000)
# answers the script drops before matching (exact, case-sensitive comparison)
NON_SPAN_ANSWERS: tuple[str, ...] = ("yes", "no")

PassageText = Union[Callable[[str], str], Mapping[str, Any]]


def budget_name(budget: int) -> str:
    """Metric name of a token budget: 2000 -> ``"R@2kt"``, 1500 -> ``"R@1500t"``."""
    if budget % 1000 == 0:
        return f"R@{budget // 1000}kt"
    return f"R@{budget}t"


def span_answers(answers: Iterable[str]) -> list[str]:
    """The answers R@kt matches: all but exact ``"yes"``/``"no"``."""
    return [a for a in answers if a not in NON_SPAN_ANSWERS]


class TokenCache:
    """Tokenised passage texts, keyed by the text itself.

    Tokenising is nearly all of R@kt's cost and the same passages come back for
    many queries (and for every run compared on one corpus), so keep one cache
    per corpus and pass it to every call. Keying by text (not docid) keeps a
    shared cache correct even across corpora. When ``max_entries`` is reached
    the oldest entries are dropped.
    """

    def __init__(self, tokenizer: str | WordTokenizer = DEFAULT_TOKENIZER, max_entries: int = 500_000) -> None:
        self.tokenize: WordTokenizer = get_word_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        self.max_entries = max(1, int(max_entries))
        self._tokens: dict[str, tuple[str, ...]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._tokens)

    def tokens(self, text: str) -> tuple[str, ...]:
        cached = self._tokens.get(text)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        toks = tuple(self.tokenize(text))
        if len(self._tokens) >= self.max_entries:
            del self._tokens[next(iter(self._tokens))]  # dicts keep insertion order
        self._tokens[text] = toks
        return toks


def hits_at_budgets(
    ctx_texts: Iterable[str],
    answers: Sequence[str],
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    cache: TokenCache | None = None,
) -> dict[str, float]:
    """1.0/0.0 per budget for one query: is any answer in the first ``budget`` tokens?

    ``answers`` are matched as given (call :func:`span_answers` first).
    ``ctx_texts`` is consumed lazily, only as far as the largest budget needs.
    """
    if cache is None:  # not `cache or ...`: an empty cache is falsy (len 0)
        cache = TokenCache()
    limit = max(budgets)
    tokens: list[str] = []
    for text in ctx_texts:
        tokens.extend(cache.tokens(text))
        if len(tokens) >= limit:
            break
    out: dict[str, float] = {}
    for budget in budgets:
        # the script's concat -> cut -> " ".join, so an answer can match across
        # a token boundary only where the join put exactly one space
        joined = " ".join(tokens[:budget])
        out[budget_name(budget)] = 1.0 if any(ans in joined for ans in answers) else 0.0
    return out


def _text_getter(passage_text: PassageText) -> Callable[[str], str]:
    if isinstance(passage_text, Mapping):
        mapping = passage_text

        def get(docid: str) -> Any:
            return mapping[docid]
    elif callable(passage_text):
        get = passage_text
    else:
        raise TypeError("passage_text must be a mapping docid -> text or a callable")

    def text_of(docid: str) -> str:
        try:
            value = get(docid)
        except KeyError:
            raise XQGError(f"the run ranks passage '{docid}', which is not in the corpus") from None
        # a Passage (or anything with .text): the title is not used, as in the script
        return value if isinstance(value, str) else value.text

    return text_of


def _check_budgets(budgets: Sequence[int]) -> tuple[int, ...]:
    out = tuple(budgets)
    if not out or any(not isinstance(b, int) or isinstance(b, bool) or b <= 0 for b in out):
        raise XQGError(f"token budgets must be positive integers, got {list(out)}")
    return out


def r_at_kt_per_query(
    run: Run,
    queries: Sequence[Query],
    passage_text: PassageText,
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    cache: TokenCache | None = None,
    tokenizer: str = DEFAULT_TOKENIZER,
) -> dict[str, dict[str, float]]:
    """Per-query R@kt hits (1.0 or 0.0), keyed ``"R@2kt"``, ``"R@5kt"``, ...

    Queries without span answers are absent from the result (the script skips
    them); a query with answers but no run entry is a miss. ``passage_text``
    maps a docid to its passage text (a ``Passage`` works too; its title is
    ignored). ``cache`` (a :class:`TokenCache`) may be shared between calls;
    when given, its tokenizer wins over ``tokenizer``.
    """
    budgets = _check_budgets(budgets)
    if cache is None:
        cache = TokenCache(tokenizer)
    text_of = _text_getter(passage_text)
    out: dict[str, dict[str, float]] = {}
    for q in queries:
        if q.qid in out:
            raise XQGError(f"query id '{q.qid}' appears twice in the evaluated queries")
        answers = span_answers(q.answers)
        if not answers:
            continue
        ranked = run.get(q.qid, ())
        texts = (text_of(docid) for docid, _score in ranked)
        out[q.qid] = hits_at_budgets(texts, answers, budgets, cache)
    return out
