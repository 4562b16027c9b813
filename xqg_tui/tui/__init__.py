"""The Textual app (``xqg tui``, ``xqg demo``). ``create_app`` for tests, ``run_app`` for the CLI."""
from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any):
    from .app import create_app as _create

    return _create(*args, **kwargs)


def run_app(*args: Any, **kwargs: Any) -> int:
    from .app import run_app as _run

    return _run(*args, **kwargs)


__all__ = ["create_app", "run_app"]
