"""name -> experiment class, in the spirit of Tevatron's benchmark registry: an
experiment registers itself once and the CLI, the app and notebooks look it up."""
from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ..errors import XQGError

if TYPE_CHECKING:
    from .base import Experiment

E = TypeVar("E", bound="type[Experiment]")

EXPERIMENTS: dict[str, "type[Experiment]"] = {}


def register(cls: E) -> E:
    name = cls.name
    if name in EXPERIMENTS and EXPERIMENTS[name] is not cls:
        raise ValueError(f"experiment {name!r} is registered twice")
    EXPERIMENTS[name] = cls
    return cls


def get_experiment(name: str) -> "type[Experiment]":
    _load_builtin()
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise XQGError(f"unknown experiment {name!r}; known: {', '.join(sorted(EXPERIMENTS))}") from None


def list_experiments() -> list[str]:
    _load_builtin()
    return list(EXPERIMENTS)


def _load_builtin() -> None:
    # Importing the modules registers them (kept lazy: finetune imports torch only when run).
    from . import alpha, finetune, languages, queries_per_lang  # noqa: F401
