"""User-facing errors.

Every mistake a user can make (a bad file, a wrong flag, an index built with
another encoder) raises a subclass of :class:`XQGError`. The CLI prints
``str(error)`` on one line and exits with status 2; the TUI shows it in a
notification. Anything else is a bug and may show a traceback.
"""
from __future__ import annotations

from pathlib import Path


class XQGError(Exception):
    """An error caused by input or environment, explained in plain words."""

    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def one_line(self) -> str:
        text = str(self)
        if self.hint:
            text = f"{text} ({self.hint})"
        return " ".join(text.split())


class InputError(XQGError):
    """A problem in an input file: names the file, the line and the field."""

    def __init__(
        self,
        path: str | Path,
        line: int | None,
        problem: str,
        field: str | None = None,
        hint: str = "",
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        what = f"field '{field}': {problem}" if field else problem
        super().__init__(f"{where}: {what}", hint)


class IndexError_(XQGError):
    """An index folder that cannot be opened or written (incomplete, corrupt, mismatched)."""


class ModelError(XQGError):
    """A model that cannot be loaded (offline, wrong type, unsafe format)."""


class BuildLockedError(XQGError):
    """Another build holds the lock on this index folder."""


class DiskFullError(XQGError):
    """The disk filled up during a build; the build state stays resumable."""
