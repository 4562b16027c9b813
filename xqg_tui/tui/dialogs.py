"""Modal dialogs: errors in plain words, help, and a path picker."""
from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, Markdown, Static

HELP_TEXT = """\
# xQG search — keys

**Search screen** (the start screen)

| key | does |
|---|---|
| type, `Enter` | search; the focus moves to the results |
| `/` | back to the query box; `Esc` leaves it |
| `↑` `↓`, `Tab` | move in a ranking, switch plain / xQG column |
| `Enter`, `i` | open the passage inspector |
| `a` | augmentation (xQG) on / off: re-ranks at once |
| `+` `-` | raise / lower alpha (the weight of the generated queries) |
| `v` | view: side by side, xQG only, plain only |
| `l` | focus the language checkboxes (Space toggles one) |
| `o` | open another index |

**Everywhere**

| key | does |
|---|---|
| `b` | index builder |
| `e` | evaluation |
| `s`, `Esc` | back to search |
| `t` | dark / light theme |
| `?` | this help |
| `q` | quit (`Ctrl+Q` works even while typing) |

Scores: plain = ⟨q, p⟩; xQG = (1 − α)·⟨q, p⟩ + α·Σ_lang ⟨q, A_lang⟩ where
A_lang is the sum (or mean) of the passage's generated-query vectors in that
language. Changing α or the languages re-ranks without re-encoding anything.

The mouse works too: click a row, a checkbox, a button.
"""


class ErrorDialog(ModalScreen[None]):
    """A problem the user must read: what went wrong and what to do next."""

    BINDINGS = [Binding("escape,enter", "dismiss", "Close")]

    def __init__(self, title: str, message: str, hint: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self._title = title
        self._message = message
        self._hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error-dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Static(self._message, id="error-message")
            if self._hint:
                yield Static(self._hint, id="error-hint", classes="hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", variant="primary", id="ok")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help-dialog"):
            yield Markdown(HELP_TEXT, id="help-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", variant="primary", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)


class PathPicker(ModalScreen["str | None"]):
    """Type a path or pick it in a tree; returns the path text or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, start: str = "", directory: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self._title = title
        self._start = start
        self.directory = directory

    def compose(self) -> ComposeResult:
        root = Path(self._start).expanduser() if self._start else Path.cwd()
        if not root.is_dir():
            root = root.parent if root.parent.is_dir() else Path.cwd()
        with Vertical(classes="dialog picker-dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Input(self._start, placeholder="type a path, or pick below", id="picker-path")
            yield DirectoryTree(str(root), id="picker-tree")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Choose", variant="primary", id="choose")
                yield Button("Up", id="up")
                yield Button("Cancel", id="cancel")

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#picker-path", Input).value = str(event.path)
        if not self.directory:
            self.dismiss(str(event.path))

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        self.query_one("#picker-path", Input).value = str(event.path)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "choose":
            self.dismiss(self.query_one("#picker-path", Input).value.strip() or None)
        elif event.button.id == "up":
            tree = self.query_one(DirectoryTree)
            tree.path = Path(tree.path).resolve().parent
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
