"""Plain data records shared by the engine, the CLI and the app."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Passage:
    docid: str
    title: str
    text: str


@dataclass(frozen=True)
class Query:
    qid: str
    text: str
    lang: str
    answers: tuple[str, ...] = ()


# qid -> {docid: relevance}
Qrels = dict[str, dict[str, int]]
# qid -> [(docid, score), ...] in rank order
Run = dict[str, list[tuple[str, float]]]
# docid -> {lang: [generated query, ...]}
GeneratedQueries = dict[str, dict[str, list[str]]]


@dataclass
class MatchedQuery:
    """A generated query of a hit, scored against the typed query."""

    lang: str
    number: int  # position among the passage's queries in that language
    text: str
    score: float  # inner product with the typed query's vector


@dataclass
class Hit:
    docid: str
    rank: int  # 1-based
    score: float
    title: str
    text: str
    matched: list[MatchedQuery] = field(default_factory=list)
    # rank in the other ranking (plain <-> augmented); None when not in its top k
    other_rank: int | None = None
    # contribution of each language's generated queries to the augmented score
    lang_contributions: dict[str, float] = field(default_factory=dict)

    @property
    def rank_change(self) -> int | None:
        """Positive = moved up in this ranking compared with the other one."""
        if self.other_rank is None:
            return None
        return self.other_rank - self.rank
