"""Small formatting helpers shared by the screens (no engine logic)."""
from __future__ import annotations

from rich.text import Text

from ..errors import XQGError


def describe_error(exc: BaseException) -> str:
    """One plain line for any exception a worker caught: the app never shows a traceback."""
    if isinstance(exc, XQGError):
        return exc.one_line()
    if isinstance(exc, FileNotFoundError):
        name = exc.filename or str(exc)
        return f"{name}: no such file or folder (check the path)"
    if isinstance(exc, PermissionError):
        return f"{exc.filename or exc}: permission denied"
    if isinstance(exc, IsADirectoryError):
        return f"{exc.filename or exc}: is a folder, a file was expected"
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller index or batch size)"
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"unexpected error ({exc.__class__.__name__}): {text}"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def fmt_score(score: float) -> str:
    # Un-normalised encoders (mBERT, CLS) give scores in the hundreds; E5 gives ~0.8.
    return f"{score:.1f}" if abs(score) >= 100 else f"{score:.3f}"


def fmt_alpha(alpha: float) -> str:
    return f"{alpha:.4f}".rstrip("0").rstrip(".") if alpha else "0"


def rank_change_text(change: int | None) -> Text:
    """▲n green (moved up with xQG), ▼n red, · unchanged."""
    if change is None:
        return Text("new", style="bold green")
    if change > 0:
        return Text(f"▲{change}", style="bold green")
    if change < 0:
        return Text(f"▼{-change}", style="bold red")
    return Text("·", style="dim")


def shorten(text: str, width: int) -> str:
    """One line of at most ``width`` cells, with an ellipsis when cut."""
    flat = " ".join(text.split())
    if width <= 1:
        return flat[:max(0, width)]
    cells = Text(flat)
    if cells.cell_len <= width:
        return flat
    cells.truncate(width - 1)
    return cells.plain + "…"


def bar(value: float, maximum: float, width: int = 20) -> str:
    """A horizontal bar of ``width`` cells for ``|value| / maximum``."""
    if maximum <= 0:
        return ""
    frac = min(1.0, abs(value) / maximum)
    full = int(frac * width)
    rest = frac * width - full
    partial = " ▏▎▍▌▋▊▉"[int(rest * 8)] if full < width else ""
    return ("█" * full + partial.strip()).ljust(width)


# The +/- keys walk this ladder: fine steps near the paper's 0.01, coarse above.
ALPHA_LADDER: tuple[float, ...] = (
    0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0,
)


def step_alpha(alpha: float, up: bool) -> float:
    if up:
        return next((a for a in ALPHA_LADDER if a > alpha + 1e-12), ALPHA_LADDER[-1])
    return next((a for a in reversed(ALPHA_LADDER) if a < alpha - 1e-12), ALPHA_LADDER[0])
