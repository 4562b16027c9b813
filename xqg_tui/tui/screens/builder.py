"""The index builder: a form, a live progress bar and a log; cancel keeps the saved
work and Start resumes it (``build_index`` is resumable by design)."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, ProgressBar, RichLog, Static

from ...index import format as fmt
from ...languages import PAPER_LANGUAGES, language_name
from ..dialogs import ErrorDialog, PathPicker
from ..messages import BuildFinished, BuildLog, BuildProgress
from ..util import describe_error, fmt_seconds
from ..widgets import PathField

if TYPE_CHECKING:
    from ...index.builder import BuildConfig, BuildEvent
    from ..app import XQGApp

STAGE_NAMES = {
    "encode": "passages encoded",
    "generate": "queries generated",
    "encode-queries": "queries encoded",
    "fuse": "fusing vectors",
    "write": "writing index",
}


class ProgressThrottle:
    """Builder callback (runs in the build thread): posts at most one progress
    message per ``interval`` plus every stage change, message and warning.

    The UI side also coalesces (``BuildProgress.can_replace``), so even a burst
    that gets through costs one redraw.
    """

    def __init__(self, post: Callable[[Message], Any], interval: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.post = post
        self.interval = interval
        self.clock = clock
        self._last = float("-inf")
        self._stage: str | None = None

    def __call__(self, ev: "BuildEvent") -> None:
        now = self.clock()
        stage_changed = ev.stage != self._stage
        finished = ev.total > 0 and ev.done >= ev.total
        if ev.level == "warning":
            self.post(BuildLog(ev.message, "warning"))
        elif ev.message:
            self.post(BuildLog(f"{ev.stage}: {ev.message}"))
        elif stage_changed and ev.total > 0:
            # A resumed stage starts above 0: the log shows how much was already saved.
            self.post(BuildLog(f"{ev.stage}: {ev.done:,}/{ev.total:,} {ev.unit}"))
        if stage_changed or finished or ev.message or now - self._last >= self.interval:
            self._last = now
            self._stage = ev.stage
            self.post(BuildProgress(ev))


def format_event(ev: "BuildEvent") -> str:
    """``generate  60/180 queries  33%  12.3 queries/s  0:05 left``"""
    if ev.total <= 0:
        return f"{ev.stage}  {ev.message}"
    frac = min(1.0, ev.done / ev.total)
    rate = f"  {ev.rate:,.1f} {ev.unit}/s" if ev.rate else ""
    left = f"  {fmt_seconds(ev.eta)} left" if ev.done < ev.total else "  done"
    return f"{ev.stage}  {ev.done:,}/{ev.total:,} {ev.unit}  {frac:.0%}{rate}{left}"


class BuilderScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.show('search')", "search"),
        Binding("ctrl+r", "start", "start/resume"),
        Binding("ctrl+g", "cancel", "cancel build"),
    ]

    app: "XQGApp"
    # Makes the cancel flag of each build; tests swap in one that trips after N chunks.
    event_factory: Callable[[], threading.Event] = threading.Event

    def __init__(self) -> None:
        super().__init__(id="builder-screen")
        self.cancel_event: threading.Event | None = None
        self.building = False
        self.last_out: Path | None = None
        self.stages: dict[str, "BuildEvent"] = {}
        self.events_drawn = 0  # how many progress messages reached the screen (tests)

    def compose(self) -> ComposeResult:
        d = self.app.build_defaults
        yield Header(show_clock=False, icon="⚙")
        with VerticalScroll(classes="form", id="build-form"):
            yield PathField("corpus file", str(d.get("corpus", "")), "corpus.jsonl (docid, title, text) or .tsv", id="corpus")
            yield PathField("index folder", str(d.get("out", "")), "where the index goes (created if missing)", directory=True, id="out")
            with Horizontal(classes="field"):
                yield Label("encoder", classes="field-label")
                yield Input(str(d.get("encoder", "offline")), id="encoder", placeholder="offline, paper, a hub id or a folder")
            with Horizontal(classes="field"):
                yield Label("generator", classes="field-label")
                yield Input(str(d.get("generator", "demo")), id="generator", placeholder="demo, paper, a hub id, a folder, or none")
            with Horizontal(classes="field"):
                yield Label("languages", classes="field-label")
                chosen = d.get("langs", PAPER_LANGUAGES)
                for code in PAPER_LANGUAGES:
                    yield Checkbox(code, code in chosen, id=f"build-lang-{code}", classes="build-lang", tooltip=language_name(code))
            with Horizontal(classes="field"):
                yield Label("queries / lang", classes="field-label")
                yield Input(str(d.get("queries_per_lang", 5)), id="qpl", type="integer", max_length=3)
            with Horizontal(classes="buttons"):
                yield Button("Start", variant="success", id="start")
                yield Button("Cancel", variant="error", id="cancel", disabled=True)
                yield Button("Search it", variant="primary", id="open-built", disabled=True)
        yield Static("", id="build-info")
        yield Static("idle", id="build-stage")
        yield ProgressBar(total=None, show_eta=False, id="build-progress")
        yield Static("", id="build-stages")
        yield RichLog(id="build-log", wrap=True, markup=False, max_lines=2000)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#build-log").border_title = "log"
        self.query_one("#build-progress").display = False  # an idle indeterminate bar would animate
        self.sub_title = "index builder"
        self._check_out_folder()

    def on_unmount(self) -> None:
        # Quitting mid-build: stop at the next chunk; everything saved resumes later.
        if self.cancel_event is not None:
            self.cancel_event.set()

    # ---- form ---------------------------------------------------------------------
    @on(PathField.Browse)
    def _browse(self, event: PathField.Browse) -> None:
        field = event.field

        def chosen(path: str | None) -> None:
            if path:
                field.value = path

        self.app.push_screen(PathPicker(f"Choose the {field.label}", field.value, field.directory), chosen)

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if event.input.parent is not None and event.input.parent.id == "out":
            self._check_out_folder()

    def _check_out_folder(self) -> None:
        info = self.query_one("#build-info", Static)
        out = self.query_one("#out", PathField).path
        start = self.query_one("#start", Button)
        start.label = "Start"
        if out is None:
            info.update("")
        elif (out / fmt.WORK_DIR / fmt.PROGRESS).exists():
            info.update("An unfinished build is saved in this folder: Resume continues it (same settings reuse the saved work).")
            start.label = "Resume"
        elif (out / fmt.MANIFEST).exists():
            info.update("An index exists in this folder: Start updates it and reuses whatever did not change.")
        else:
            info.update("")

    def _langs(self) -> list[str]:
        return [str(c.id).removeprefix("build-lang-") for c in self.query(".build-lang").results(Checkbox) if c.value]

    def make_config(self) -> "BuildConfig":
        """The form as a BuildConfig; raises XQGError with what to fix."""
        from ...errors import XQGError
        from ...index.builder import BuildConfig

        corpus = self.query_one("#corpus", PathField).path
        out = self.query_one("#out", PathField).path
        if corpus is None:
            raise XQGError("choose a corpus file first (JSONL with docid, title, text; or TSV)")
        if out is None:
            raise XQGError("choose the index folder to build into")
        try:
            qpl = int(self.query_one("#qpl", Input).value or "0")
        except ValueError:
            raise XQGError("queries per language must be a whole number") from None
        generator = self.query_one("#generator", Input).value.strip() or "none"
        langs = self._langs()
        if generator.lower() != "none" and qpl > 0 and not langs:
            raise XQGError("tick at least one language to generate queries in (or set the generator to none)")
        return BuildConfig(
            corpus=corpus,
            out=out,
            encoder=self.query_one("#encoder", Input).value.strip() or "offline",
            generator=generator,
            langs=langs,
            queries_per_lang=qpl,
            device=self.app.device,
            **{k: v for k, v in self.app.build_defaults.items() if k in ("max_new_tokens", "chunk_size", "batch_size", "gen_batch_size", "seed")},
        )

    # ---- running ------------------------------------------------------------------
    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if self.building:
            self.notify("a build is already running", severity="warning")
            return
        try:
            cfg = self.make_config()
        except Exception as e:  # noqa: BLE001
            self.notify(describe_error(e), severity="error", timeout=8)
            return
        resuming = (cfg.out / fmt.WORK_DIR / fmt.PROGRESS).exists()
        self.building = True
        self.stages.clear()
        self.last_out = cfg.out
        self.cancel_event = self.event_factory()
        self._set_buttons()
        log = self.query_one("#build-log", RichLog)
        log.write(Text(f"{'resuming' if resuming else 'starting'} build → {cfg.out}", style="bold"))
        log.write(f"corpus {cfg.corpus}, encoder {cfg.encoder}, generator {cfg.generator or 'none'}, "
                  f"languages {','.join(cfg.langs or []) or 'none'}, {cfg.queries_per_lang} queries each")
        self.query_one("#build-stage", Static).update("starting…")
        self.query_one("#build-progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#build-progress").display = True
        self._build_worker(cfg, self.cancel_event)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.building and self.cancel_event is not None:
            self.cancel_event.set()
            self.query_one("#build-stage", Static).update("cancelling: stopping after the current chunk…")
            self.query_one("#cancel", Button).disabled = True

    @on(Button.Pressed, "#open-built")
    def _open_built(self) -> None:
        if self.last_out is not None:
            self.app.open_index(self.last_out)
            self.app.action_show("search")

    def _set_buttons(self) -> None:
        self.query_one("#start", Button).disabled = self.building
        self.query_one("#cancel", Button).disabled = not self.building
        if self.building:
            self.query_one("#open-built", Button).disabled = True

    @work(thread=True, group="build", exclusive=True, exit_on_error=False)
    def _build_worker(self, cfg: "BuildConfig", cancel: threading.Event) -> None:
        from ...index.builder import BuildCancelled, build_index

        t0 = time.perf_counter()
        try:
            result = build_index(cfg, progress=ProgressThrottle(self.post_message), cancel=cancel)
        except BuildCancelled as e:
            self.post_message(BuildFinished(None, cfg.out, time.perf_counter() - t0, cancelled=True, error=e.one_line()))
        except Exception as e:  # noqa: BLE001
            self.post_message(BuildFinished(None, cfg.out, time.perf_counter() - t0, error=describe_error(e)))
        else:
            self.post_message(BuildFinished(result, cfg.out, time.perf_counter() - t0))

    def on_build_progress(self, message: BuildProgress) -> None:
        ev = message.event
        self.events_drawn += 1
        self.stages[ev.stage] = ev
        self.query_one("#build-stage", Static).update(Text(format_event(ev), style="bold"))
        bar = self.query_one("#build-progress", ProgressBar)
        if ev.total > 0:
            bar.update(total=ev.total, progress=ev.done)
        else:
            bar.update(total=None)
        lines = Text()
        for stage, name in STAGE_NAMES.items():
            e = self.stages.get(stage)
            if e is None or e.total <= 0:
                continue
            done = e.done >= e.total
            lines.append("✓ " if done else "… ", style="green" if done else "yellow")
            lines.append(f"{name}: {e.done:,}/{e.total:,}")
            if not done and e.rate:
                lines.append(f"  {e.rate:,.1f} {e.unit}/s, {fmt_seconds(e.eta)} left", style="dim")
            lines.append("   ")
        self.query_one("#build-stages", Static).update(lines)

    def on_build_log(self, message: BuildLog) -> None:
        style = "yellow" if message.level == "warning" else ""
        prefix = "warning: " if message.level == "warning" else ""
        self.query_one("#build-log", RichLog).write(Text(prefix + message.text, style=style))

    def on_build_finished(self, message: BuildFinished) -> None:
        self.building = False
        self._set_buttons()
        log = self.query_one("#build-log", RichLog)
        stage = self.query_one("#build-stage", Static)
        if message.result is not None:
            r = message.result
            reused = f" (reused: {', '.join(r.reused)})" if r.reused else ""
            text = f"index ready: {r.passages:,} passages, {r.generated_queries:,} generated queries in {len(r.langs)} languages{reused}"
            log.write(Text(text, style="bold green"))
            for w in r.warnings:
                log.write(Text(f"warning: {w}", style="yellow"))
            stage.update(Text("done: press “Search it” to search the new index", style="bold green"))
            self.query_one("#open-built", Button).disabled = False
            self.query_one("#build-progress", ProgressBar).update(total=1, progress=1)
            self.notify(text, title="build finished")
            self.query_one("#start", Button).label = "Start"
            self.query_one("#build-info", Static).update("")
            return
        elif message.cancelled:
            log.write(Text("stopped: the work done so far is saved; Resume continues it", style="bold yellow"))
            stage.update(Text("cancelled: Resume continues where it stopped", style="yellow"))
            self.notify("build cancelled; Resume continues where it stopped", severity="warning")
        else:
            log.write(Text(f"failed: {message.error}", style="bold red"))
            stage.update(Text("failed (see the log)", style="red"))
            self.app.push_screen(ErrorDialog("The build failed", message.error or "", "Fix the problem and press Start: finished work is kept and reused."))
        self._check_out_folder()
