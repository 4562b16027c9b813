"""The index builder screen: build, progress, cancel, resume, then search the result."""
from __future__ import annotations

import json
import threading
from pathlib import Path

from textual.widgets import Button, Checkbox, Input, ProgressBar, RichLog, Static

from tui_fixtures import JA_QUERY, plain_text, run_async, settle, tui_index, tui_searcher  # noqa: F401
from xqg_tui.index.builder import BuildEvent
from xqg_tui.io import write_corpus_jsonl
from xqg_tui.tui.app import create_app
from xqg_tui.tui.dialogs import ErrorDialog
from xqg_tui.tui.messages import BuildLog, BuildProgress
from xqg_tui.tui.screens.builder import BuilderScreen, ProgressThrottle, format_event
from xqg_tui.tui.widgets import PathField, ResultsTable


class CancelAfter(threading.Event):
    """Reports "cancelled" from the n-th check on: the build stops between chunks."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.left = checks

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0 or super().is_set()


def log_text(screen) -> str:
    return "\n".join(line.text for line in screen.query_one("#build-log", RichLog).lines)


async def fill_form(pilot, screen: BuilderScreen, corpus: Path, out: Path, encoder: Path, generator: Path) -> None:
    screen.query_one("#corpus", PathField).value = str(corpus)
    screen.query_one("#out", PathField).value = str(out)
    screen.query_one("#encoder", Input).value = str(encoder)
    screen.query_one("#generator", Input).value = str(generator)
    for box in screen.query(".build-lang").results(Checkbox):
        box.value = box.id in ("build-lang-ja", "build-lang-ko")
    screen.query_one("#qpl", Input).value = "2"
    await pilot.pause()


def test_throttle_posts_few_progress_messages():
    posted = []
    now = [0.0]
    throttle = ProgressThrottle(posted.append, interval=0.1, clock=lambda: now[0])
    throttle(BuildEvent("encode", 0, 1000, "passages"))
    for i in range(1, 1000):
        throttle(BuildEvent("encode", i, 1000, "passages", elapsed=1.0))
    now[0] = 0.5
    throttle(BuildEvent("encode", 1000, 1000, "passages", elapsed=2.0))
    throttle(BuildEvent("generate", 0, 0, "queries", "loading generator x"))
    throttle(BuildEvent("fuse", 0, 1, "matrix", "sum fusion favours ...", level="warning"))
    progress = [m for m in posted if isinstance(m, BuildProgress)]
    logs = [m for m in posted if isinstance(m, BuildLog)]
    # start, finish, the generator message and the warning; not 1000 redraws
    assert len(progress) == 4
    assert progress[1].event.done == 1000
    assert [l.level for l in logs].count("warning") == 1
    assert any("loading generator" in l.text for l in logs)
    # messages coalesce in the UI queue: an older BuildProgress gives way to a newer one
    assert progress[0].can_replace(progress[1]) and not logs[0].can_replace(progress[0])
    ev = BuildEvent("generate", 60, 180, "queries", elapsed=5.0)
    assert format_event(ev) == "generate  60/180 queries  33%  12.0 queries/s  0:10 left"


@run_async
async def test_build_cancel_resume_and_search(tmp_path, tiny_encoder_dir, tiny_generator_dir, tiny_corpus, tui_searcher):
    corpus = tmp_path / "corpus.jsonl"
    write_corpus_jsonl(corpus, tiny_corpus)
    out = tmp_path / "built"
    app = create_app(searcher=tui_searcher, show_timings=False, device="cpu",
                     build_defaults={"chunk_size": 5, "max_new_tokens": 6})
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("escape")  # leave the query box
        await pilot.press("b")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, BuilderScreen)
        await fill_form(pilot, screen, corpus, out, tiny_encoder_dir, tiny_generator_dir)

        # 1) cancel after two chunks: the work is kept and the button offers to resume
        screen.event_factory = lambda: CancelAfter(2)
        await pilot.click("#start")
        assert "starting build" in log_text(screen)
        await settle(pilot, app)
        assert not screen.building
        assert "stopped" in log_text(screen)
        assert (out / "work" / "progress.json").exists() and not (out / "manifest.json").exists()
        assert str(screen.query_one("#start", Button).label) == "Resume"
        assert "unfinished build" in plain_text(screen.query_one("#build-info", Static))
        assert screen.query_one("#open-built", Button).disabled

        # 2) resume: finishes, reusing the saved chunks
        screen.event_factory = threading.Event
        await pilot.click("#start")
        await settle(pilot, app)
        text = log_text(screen)
        resumed = text[text.index("resuming build"):]
        assert "encode: 10/20 passages" in resumed  # the two saved chunks are not redone
        assert "index ready: 20 passages" in text and "80 generated queries in 2 languages" in text
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["generation"]["langs"] == ["ja", "ko"]
        assert screen.events_drawn >= 2
        assert screen.query_one("#build-progress", ProgressBar).percentage == 1.0
        assert "queries generated: 80/80" in plain_text(screen.query_one("#build-stages", Static))

        # 3) search the new index
        await pilot.click("#open-built")
        await settle(pilot, app)
        assert app.screen is app.search_screen
        assert app.searcher.index.root == out
        assert [str(c.label) for c in app.search_screen.query(".lang-check").results(Checkbox)] == ["ja", "ko"]
        await pilot.click("#query")
        await pilot.press(*JA_QUERY, "enter")
        await settle(pilot, app)
        assert len(app.search_screen.query_one("#augmented", ResultsTable).hits) == 10


@run_async
async def test_build_form_errors_are_explained(tmp_path, tui_searcher):
    app = create_app(searcher=tui_searcher, show_timings=False, device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        app.action_show("build")
        await pilot.pause()
        screen = app.screen
        await pilot.press("ctrl+r")  # nothing filled in
        await pilot.pause()
        assert any("corpus" in str(n.message) for n in app._notifications)
        assert not screen.building
        screen.query_one("#corpus", PathField).value = str(tmp_path / "missing.jsonl")
        screen.query_one("#out", PathField).value = str(tmp_path / "idx")
        screen.query_one("#generator", Input).value = "none"
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert isinstance(app.screen, ErrorDialog)
        assert "missing.jsonl" in plain_text(app.screen.query_one("#error-message", Static))
        assert "failed" in log_text(screen)
        await pilot.press("enter")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.search_screen


@run_async
async def test_progress_burst_costs_few_redraws(tui_searcher):
    app = create_app(searcher=tui_searcher, show_timings=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.action_show("build")
        await pilot.pause()
        screen = app.screen
        for i in range(300):
            screen.post_message(BuildProgress(BuildEvent("encode", i + 1, 300, "passages", elapsed=1.0)))
        await pilot.pause()
        await pilot.pause()
        assert screen.events_drawn < 300
        assert screen.stages["encode"].done == 300  # the newest event is the one drawn
        assert "encode  300/300 passages" in plain_text(screen.query_one("#build-stage", Static))


@run_async
async def test_browse_button_fills_the_field(tmp_path, tui_searcher):
    from xqg_tui.tui.dialogs import PathPicker

    (tmp_path / "corpus.jsonl").write_text("{}\n")
    app = create_app(searcher=tui_searcher, show_timings=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.action_show("build")
        await pilot.pause()
        screen = app.screen
        await pilot.click("#corpus .browse")
        await pilot.pause()
        assert isinstance(app.screen, PathPicker)
        app.screen.query_one("#picker-path", Input).value = str(tmp_path / "corpus.jsonl")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        assert screen.query_one("#corpus", PathField).value == str(tmp_path / "corpus.jsonl")
        # Escape in the picker leaves the field alone
        await pilot.click("#out .browse")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert screen.query_one("#out", PathField).value == ""
