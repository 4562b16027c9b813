"""What the user chose on the search screen, shared with the evaluation screen."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SearchSettings:
    alpha: float = 0.01
    fusion: str = "sum"
    langs: list[str] = field(default_factory=list)  # generated-query languages that count
    augment: bool = True
    k: int = 10
    n: int | None = None  # queries per language (None = all stored)

    @classmethod
    def from_defaults(cls, defaults: dict, index_langs: list[str], alpha: float | None = None, k: int = 10) -> "SearchSettings":
        langs = [l for l in defaults.get("langs", index_langs) if l in index_langs]
        return cls(
            alpha=float(defaults.get("alpha", 0.01) if alpha is None else alpha),
            fusion=str(defaults.get("fusion", "sum")),
            langs=langs,
            k=k,
        )
