"""A plain-terminal progress bar for the CLI (the app renders BuildEvents itself)."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from .index.builder import BuildEvent


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class TerminalProgress:
    """Renders BuildEvents as one updating line per stage on stderr; throttled."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, min_interval: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.min_interval = min_interval
        self._last = 0.0
        self._stage: str | None = None
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, ev: BuildEvent) -> None:
        if ev.level == "warning":
            self._newline()
            print(f"xqg: warning: {ev.message}", file=self.stream, flush=True)
            return
        if self.quiet:
            return
        now = time.monotonic()
        stage_changed = ev.stage != self._stage
        finished = ev.total > 0 and ev.done >= ev.total
        if not (stage_changed or finished or now - self._last >= self.min_interval):
            return
        if stage_changed:
            self._newline()
            self._stage = ev.stage
        self._last = now
        line = self.format(ev)
        if self._tty:
            self.stream.write("\r\x1b[2K" + line)
            if finished:
                self.stream.write("\n")
                self._stage = None
        elif finished or stage_changed or ev.message:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _newline(self) -> None:
        if self._tty and self._stage is not None:
            self.stream.write("\n")
        self._stage = None

    @staticmethod
    def format(ev: BuildEvent, width: int = 24) -> str:
        if ev.total <= 0:
            return f"{ev.stage:<15} {ev.message}"
        frac = min(1.0, ev.done / ev.total)
        filled = int(frac * width)
        bar = "█" * filled + "░" * (width - filled)
        rate = f"{ev.rate:,.1f} {ev.unit}/s" if ev.rate else ""
        return (
            f"{ev.stage:<15} {bar} {ev.done:,}/{ev.total:,} {ev.unit} {frac:6.1%}  {rate}  "
            f"elapsed {_fmt_seconds(ev.elapsed)} left {_fmt_seconds(ev.eta)}"
            + (f"  {ev.message}" if ev.message else "")
        )
