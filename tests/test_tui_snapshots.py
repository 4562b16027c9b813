"""SVG snapshots of the main screens (pytest-textual-snapshot).

Deterministic: a hash-encoder index with hand-written generated queries (the
tiny random models tie every score), fixed sizes, timings hidden, the encoder
already loaded, no clock in the header, relative paths in the forms. Update after a deliberate
UI change with ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""
from __future__ import annotations

import pytest
from textual.widgets import Input

from tui_fixtures import JA_QUERY, eval_files, settle, snap_searcher  # noqa: F401
from xqg_tui.tui.app import create_app

NOTE = "small demonstration generator — see model card"


def make_app(searcher, **kwargs):
    return create_app(searcher=searcher, show_timings=False, note=NOTE, **kwargs)


async def no_blink(pilot) -> None:
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


async def searched(pilot) -> None:
    await no_blink(pilot)
    await pilot.press(*JA_QUERY, "enter")
    await settle(pilot, pilot.app)


def test_snapshot_start_screen(snap_compare, snap_searcher):
    assert snap_compare(make_app(snap_searcher), terminal_size=(80, 24), run_before=no_blink)


def test_snapshot_search_80x24(snap_compare, snap_searcher):
    assert snap_compare(make_app(snap_searcher), terminal_size=(80, 24), run_before=searched)


def test_snapshot_search_wide_side_by_side(snap_compare, snap_searcher):
    assert snap_compare(make_app(snap_searcher), terminal_size=(140, 40), run_before=searched)


def test_snapshot_search_light_theme(snap_compare, snap_searcher):
    assert snap_compare(make_app(snap_searcher, theme="light"), terminal_size=(110, 30), run_before=searched)


def test_snapshot_inspector(snap_compare, snap_searcher):
    async def inspect(pilot) -> None:
        await searched(pilot)
        await pilot.press("i")
        await pilot.pause()

    assert snap_compare(make_app(snap_searcher), terminal_size=(100, 40), run_before=inspect)


def test_snapshot_builder(snap_compare, snap_searcher):
    async def builder(pilot) -> None:
        pilot.app.action_show("build")
        await pilot.pause()
        await no_blink(pilot)

    assert snap_compare(make_app(snap_searcher), terminal_size=(80, 24), run_before=builder)


def test_snapshot_evaluation(snap_compare, snap_searcher, eval_files, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(eval_files["queries"].parent)  # relative paths keep tmp dirs out of the picture

    async def evaluation(pilot) -> None:
        pilot.app.action_show("evaluate")
        await pilot.pause()
        await no_blink(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, pilot.app)

    app = make_app(snap_searcher, eval_queries="queries.jsonl", eval_qrels="qrels.trec", device="cpu")
    assert snap_compare(app, terminal_size=(100, 32), run_before=evaluation)


def test_snapshot_help(snap_compare, snap_searcher):
    async def help_(pilot) -> None:
        pilot.app.action_help()
        await pilot.pause()

    assert snap_compare(make_app(snap_searcher), terminal_size=(80, 24), run_before=help_)
