"""Every message a worker posts back to the UI, in one place.

Workers run in threads and never touch widgets; they post one of these and the
handler on the UI side updates the screen. ``BuildProgress`` replaces an older
unprocessed ``BuildProgress`` (``can_replace``) so a burst of builder events
costs one redraw.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:  # engine types only for hints; importing them is not free
    from ..index.builder import BuildEvent, BuildResult
    from ..search import QueryState, Searcher, SearchResponse


class IndexOpened(Message):
    def __init__(self, searcher: "Searcher", path: Path, seconds: float) -> None:
        super().__init__()
        self.searcher = searcher
        self.path = path
        self.seconds = seconds


class IndexFailed(Message):
    def __init__(self, path: Path, error: str) -> None:
        super().__init__()
        self.path = path
        self.error = error


class EncoderLoaded(Message):
    def __init__(self, searcher: "Searcher", seconds: float) -> None:
        super().__init__()
        self.searcher = searcher
        self.seconds = seconds


class EncoderFailed(Message):
    def __init__(self, searcher: "Searcher", error: str) -> None:
        super().__init__()
        self.searcher = searcher
        self.error = error


class SearchDone(Message):
    """A search or re-rank finished; ``seq`` lets the screen drop stale answers."""

    def __init__(self, seq: int, state: "QueryState", response: "SearchResponse", seconds: float, reranked: bool) -> None:
        super().__init__()
        self.seq = seq
        self.state = state
        self.response = response
        self.seconds = seconds
        self.reranked = reranked


class SearchFailed(Message):
    def __init__(self, seq: int, error: str) -> None:
        super().__init__()
        self.seq = seq
        self.error = error


class BuildProgress(Message):
    """The latest builder event; only the newest pending one is drawn."""

    def __init__(self, event: "BuildEvent") -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        # Called on the older message with the newer pending one: drop the older.
        return isinstance(message, BuildProgress)


class BuildLog(Message):
    """A line for the build log (stage changes, model loading, warnings): never dropped."""

    def __init__(self, text: str, level: str = "info") -> None:
        super().__init__()
        self.text = text
        self.level = level


class BuildFinished(Message):
    def __init__(self, result: "BuildResult | None", out: Path, seconds: float, cancelled: bool = False, error: str | None = None) -> None:
        super().__init__()
        self.result = result
        self.out = out
        self.seconds = seconds
        self.cancelled = cancelled
        self.error = error


class EvalProgress(Message):
    def __init__(self, label: str, done: int, total: int) -> None:
        super().__init__()
        self.label = label
        self.done = done
        self.total = total

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EvalProgress)


class EvalDone(Message):
    """Plain and augmented reports, their comparison and the settings used."""

    def __init__(self, plain: Any, augmented: Any, comparison: Any, info: dict[str, Any]) -> None:
        super().__init__()
        self.plain = plain
        self.augmented = augmented
        self.comparison = comparison
        self.info = info


class EvalFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
