"""Reusable widgets: the ranking table and a labelled path field with a picker."""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Label

from ..types import Hit
from .util import fmt_score, rank_change_text, shorten


class ResultsTable(DataTable):
    """One ranking (plain or augmented). Rows are keyed by docid.

    ``kind`` is "plain" or "augmented"; the move column shows, for the augmented
    ranking, how far each passage moved compared with the plain one, and for the
    plain ranking where the passage ended up with xQG.
    """

    def __init__(self, kind: str, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.kind = kind
        self.hits: list[Hit] = []
        self._width = 0

    def show_hits(self, hits: list[Hit]) -> None:
        self.hits = list(hits)
        self._render_rows(keep_cursor=False)

    def hit_at_cursor(self) -> Hit | None:
        if not self.hits or self.cursor_row is None or not (0 <= self.cursor_row < len(self.hits)):
            return None
        return self.hits[self.cursor_row]

    def _render_rows(self, keep_cursor: bool) -> None:
        row = self.cursor_row if keep_cursor else 0
        self.clear(columns=True)
        width = self.size.width or (self.app.size.width if self.is_attached else 80)
        self._width = width
        # Fixed columns: rank 3, move 4, score 7; each column adds 2 cells of padding.
        free = max(20, width - (3 + 4 + 7) - 5 * 2 - 2)
        title_w = max(8, min(28, free // 3))
        text_w = max(8, free - title_w)
        move_label = "move" if self.kind == "augmented" else "xQG"
        self.add_column("#", width=3, key="rank")
        self.add_column(move_label, width=4, key="move")
        self.add_column("score", width=7, key="score")
        self.add_column("title", width=title_w, key="title")
        self.add_column("passage (English)", width=text_w, key="text")
        for h in self.hits:
            if self.kind == "augmented":
                move = rank_change_text(h.rank_change)
            else:
                move = Text(f"#{h.other_rank}" if h.other_rank is not None else "-", style="dim")
            self.add_row(
                Text(str(h.rank), style="bold"),
                move,
                fmt_score(h.score),
                Text(shorten(h.title or "(untitled)", title_w), style="bold" if h.title else "dim italic"),
                shorten(h.text, text_w),
                key=h.docid,
            )
        if self.hits:
            self.move_cursor(row=min(row, len(self.hits) - 1), animate=False)

    def on_resize(self, event: events.Resize) -> None:
        if self.hits and event.size.width != self._width:
            self._render_rows(keep_cursor=True)

    def docids(self) -> list[str]:
        return [h.docid for h in self.hits]


class PathField(Horizontal):
    """``label [path input] […]``: the button opens a file picker."""

    class Browse(Message):
        def __init__(self, field: "PathField") -> None:
            super().__init__()
            self.field = field

    def __init__(self, label: str, value: str = "", placeholder: str = "", directory: bool = False, **kwargs) -> None:
        super().__init__(classes="field", **kwargs)
        self._label = label
        self._value = value
        self._placeholder = placeholder
        self.directory = directory

    def compose(self) -> ComposeResult:
        yield Label(self._label, classes="field-label")
        yield Input(self._value, placeholder=self._placeholder, classes="field-input")
        yield Button("…", classes="browse", tooltip="choose with a file browser")

    @property
    def label(self) -> str:
        return self._label

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def value(self) -> str:
        return self.input.value.strip()

    @value.setter
    def value(self, text: str) -> None:
        self.input.value = text

    @property
    def path(self) -> Path | None:
        return Path(self.value).expanduser() if self.value else None

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.Browse(self))
