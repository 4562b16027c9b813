"""The search screen, driven headless with the Pilot."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input, Label, Static

from tui_fixtures import BIG_ALPHA, FI_QUERY, JA_QUERY, plain_text, run_async, settle, tui_index, tui_searcher, until  # noqa: F401
from xqg_tui.errors import ModelError
from xqg_tui.search import Searcher
from xqg_tui.tui.app import create_app
from xqg_tui.tui.dialogs import ErrorDialog, HelpScreen
from xqg_tui.tui.screens.inspector import InspectorScreen
from xqg_tui.tui.widgets import ResultsTable


def tables(app):
    scr = app.search_screen
    return scr.query_one("#plain", ResultsTable), scr.query_one("#augmented", ResultsTable)


async def search(pilot, app, text: str) -> None:
    await pilot.click("#query")
    await pilot.press(*text, "enter")
    await settle(pilot, app)


@run_async
async def test_whole_path_japanese_query(tui_searcher, tui_index):
    """Type Japanese, see English passages, toggle xQG, see the order change, inspect."""
    corpus_text = {p.docid: p.text for p in tui_searcher.index.passages}
    app = create_app(searcher=tui_searcher, alpha=BIG_ALPHA, show_timings=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert isinstance(app.focused, Input) and app.focused.id == "query"
        await search(pilot, app, JA_QUERY)
        plain, aug = tables(app)
        # English passages of the corpus, ten of them, in both rankings
        assert len(aug.hits) == 10 and len(plain.hits) == 10
        for h in aug.hits:
            assert h.text == corpus_text[h.docid]
        row = aug.get_row_at(0)
        assert aug.hits[0].text[:10] in str(row[4])
        # language detected and shown
        status = plain_text(app.search_screen.query_one("#status", Static))
        assert "ja Japanese" in status and "detected" in status
        # focus moved to the results so single keys act on them
        assert app.focused is aug
        on_order = aug.docids()
        assert on_order != plain.docids(), "a large alpha must change the order"
        assert any(h.rank_change for h in aug.hits)
        await pilot.press("a")
        await settle(pilot, app)
        assert app.settings.augment is False
        assert aug.docids() == plain.docids()
        assert "off" in plain_text(app.search_screen.query_one("#aug-title", Label))
        await pilot.press("a")
        await settle(pilot, app)
        assert aug.docids() == on_order
        # open the inspector on the highlighted hit
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, InspectorScreen)
        assert app.screen.hit.docid == on_order[1]
        assert corpus_text[on_order[1]] in plain_text(app.screen.query_one("#insp-passage", Static))
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.search_screen


@run_async
async def test_slash_returns_to_query_and_language_override(tui_searcher):
    app = create_app(searcher=tui_searcher, alpha=BIG_ALPHA, show_timings=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await search(pilot, app, FI_QUERY)
        assert isinstance(app.focused, ResultsTable)
        assert app.search_screen.response.lang == "fi"
        await pilot.press("slash")
        assert app.focused.id == "query"
        # choose the language by hand: it is used instead of detection
        app.search_screen.query_one("#lang-select").value = "ru"
        await pilot.press("enter")
        await settle(pilot, app)
        resp = app.search_screen.response
        assert resp.lang == "ru" and resp.detected is False
        assert "(chosen)" in plain_text(app.search_screen.query_one("#status", Static))


@run_async
async def test_alpha_keys_field_and_no_model_call_on_rerank(tui_searcher):
    app = create_app(searcher=tui_searcher, alpha=0.5, show_timings=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await search(pilot, app, JA_QUERY)
        encoder = tui_searcher._encoder
        calls = encoder.calls
        await pilot.press("plus")
        await settle(pilot, app)
        assert app.settings.alpha == pytest.approx(0.6)
        assert app.search_screen.query_one("#alpha", Input).value == "0.6"
        assert app.search_screen.response.spec.alpha == pytest.approx(0.6)
        await pilot.press("minus", "minus")
        await settle(pilot, app)
        assert app.settings.alpha == pytest.approx(0.4)
        # the field: alpha 0 gives the plain order in the xQG column
        field = app.search_screen.query_one("#alpha", Input)
        field.focus()
        field.value = "0"
        await pilot.press("enter")
        await settle(pilot, app)
        plain, aug = tables(app)
        assert app.settings.alpha == 0.0
        assert aug.docids() == plain.docids()
        assert isinstance(app.focused, ResultsTable)
        # a bad value is refused with a message, the setting stays
        field.focus()
        field.value = "5"
        await pilot.press("enter")
        await pilot.pause()
        assert app.settings.alpha == 0.0
        assert any("between 0 and 1" in str(n.message) for n in app._notifications)
        assert encoder.calls == calls, "re-ranking must not call the encoder"


@run_async
async def test_language_checkboxes_rerank(tui_searcher):
    app = create_app(searcher=tui_searcher, alpha=BIG_ALPHA, show_timings=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await search(pilot, app, JA_QUERY)
        plain, aug = tables(app)
        assert aug.docids() != plain.docids()
        boxes = list(app.search_screen.query(".lang-check").results(Checkbox))
        assert [str(b.label) for b in boxes] == ["ja", "fi", "ru"]
        for box in boxes:
            await pilot.click(f"#{box.id}")
            await settle(pilot, app)
        assert app.settings.langs == []
        assert aug.docids() == plain.docids()  # no generated query counts
        assert app.search_screen.response.spec.langs == ()
        await pilot.click("#lang-ja")
        await settle(pilot, app)
        assert app.settings.langs == ["ja"]
        assert app.search_screen.response.spec.langs == ("ja",)
        assert set(aug.hits[0].lang_contributions) == {"ja"}
        assert "ja" in plain_text(app.search_screen.query_one("#aug-title", Label))


@run_async
async def test_view_switching_and_small_terminal(tui_searcher):
    app = create_app(searcher=tui_searcher, alpha=BIG_ALPHA, show_timings=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await search(pilot, app, JA_QUERY)
        scr = app.search_screen
        # 80 columns: one ranking at a time (xQG), switchable
        assert scr.query_one("#aug-pane").display and not scr.query_one("#plain-pane").display
        assert scr.query_one("#augmented", ResultsTable).size.height >= 8
        await pilot.press("v")
        assert scr.query_one("#plain-pane").display and not scr.query_one("#aug-pane").display
        assert app.focused.id == "plain"
        await pilot.press("v")
        assert scr.query_one("#plain-pane").display and scr.query_one("#aug-pane").display
    app = create_app(searcher=tui_searcher, alpha=BIG_ALPHA, show_timings=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await search(pilot, app, JA_QUERY)
        scr = app.search_screen
        assert scr.query_one("#plain-pane").display and scr.query_one("#aug-pane").display
        assert scr.query_one("#preview").display  # tall terminal: passage preview
        hit = scr.query_one("#augmented", ResultsTable).hits[0]
        assert hit.text in plain_text(scr.query_one("#preview", Static), width=160)


@run_async
async def test_opens_fast_and_queues_search_until_encoder_ready(tui_index):
    gate = threading.Event()

    class SlowSearcher(Searcher):
        def load_encoder(self, device: str = "auto"):
            gate.wait(10)
            return super().load_encoder("cpu")

    searcher = SlowSearcher.open(tui_index)
    app = create_app(searcher=searcher, alpha=BIG_ALPHA, show_timings=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        # The screen is up and usable while the encoder is still held back by the
        # gate: loading never blocks the first frame (timing is the benchmarks' job).
        assert app.focused.id == "query"
        scr = app.search_screen
        assert app.encoder_state == "loading"
        assert "loading encoder" in plain_text(scr.query_one("#status", Static))
        assert scr.query_one("#busy").display
        await pilot.press(*JA_QUERY, "enter")
        await pilot.pause()
        assert scr.response is None
        assert "waits for the encoder" in plain_text(scr.query_one("#status", Static))
        gate.set()
        await settle(pilot, app)
        assert app.encoder_state == "ready"
        assert scr.response is not None and scr.response.query == JA_QUERY
        assert len(scr.query_one("#augmented", ResultsTable).hits) == 10
        assert not scr.query_one("#busy").display


@run_async
async def test_open_index_path_in_worker(tui_index):
    app = create_app(tui_index, alpha=BIG_ALPHA, show_timings=False, device="cpu")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.focused.id == "query"  # the first frame does not wait for the index
        await settle(pilot, app)
        assert app.searcher is not None and app.searcher.index.root == tui_index
        assert app.encoder_state == "ready"
        await search(pilot, app, FI_QUERY)
        assert len(app.search_screen.query_one("#augmented", ResultsTable).hits) == 10


@run_async
async def test_missing_index_shows_dialog_not_traceback(tmp_path: Path):
    app = create_app(tmp_path / "nope", show_timings=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        assert isinstance(app.screen, ErrorDialog)
        msg = plain_text(app.screen.query_one("#error-message", Static))
        assert "no such index folder" in msg
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is app.search_screen
        assert "no index open" in plain_text(app.search_screen.query_one("#status", Static))
        # typing a search without an index explains instead of failing
        await pilot.press(*"kysymys", "enter")
        await pilot.pause()
        assert any("no index" in str(n.message) for n in app._notifications)
        assert app.return_code is None  # still running


@run_async
async def test_encoder_that_cannot_load_is_explained(tui_index):
    class Offline(Searcher):
        def load_encoder(self, device: str = "auto"):
            raise ModelError("the model 'x' is not downloaded and the network is off", "run xqg models prepare")

    app = create_app(searcher=Offline.open(tui_index), show_timings=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        assert isinstance(app.screen, ErrorDialog)
        assert "not downloaded" in plain_text(app.screen.query_one("#error-message", Static))
        await pilot.press("escape")
        await pilot.press(*JA_QUERY, "enter")
        await pilot.pause()
        assert app.encoder_state == "failed"
        assert any("cannot search" in str(n.message) for n in app._notifications)
        assert "encoder failed" in plain_text(app.search_screen.query_one("#status", Static))


@run_async
async def test_empty_query_help_theme_and_quit(tui_searcher):
    app = create_app(searcher=tui_searcher, show_timings=False, theme="light")
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme == "textual-light"
        await pilot.press("enter")
        await pilot.pause()
        assert any("empty" in str(n.message) for n in app._notifications)
        await pilot.press("escape")  # leave the query box so single keys are commands
        assert app.focused.id == "augment"
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.search_screen
        await pilot.press("t")
        assert app.theme == "textual-dark"
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


@run_async
async def test_mouse_buttons_rows_and_open_index_dialog(tui_searcher, tui_index):
    from textual.widgets import DirectoryTree

    from xqg_tui.tui.dialogs import PathPicker

    app = create_app(searcher=tui_searcher, alpha=0.5, show_timings=False, device="cpu")
    async with app.run_test(size=(120, 36)) as pilot:
        await search(pilot, app, JA_QUERY)
        await pilot.click("#alpha-up")
        await settle(pilot, app)
        assert app.settings.alpha == pytest.approx(0.6)
        await pilot.click("#augment")
        await settle(pilot, app)
        assert app.settings.augment is False
        # click a row, then click it again: the inspector opens on that passage
        aug = app.search_screen.query_one("#augmented", ResultsTable)
        await pilot.click("#augmented", offset=(10, 3))  # line 0 is the header: the third hit
        await until(pilot, lambda: aug.cursor_row == 2)
        assert aug.cursor_row == 2
        await pilot.click("#augmented", offset=(10, 3))
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen))
        assert isinstance(app.screen, InspectorScreen) and app.screen.hit.docid == aug.hits[2].docid
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.search_screen)
        # o: open an index by typing its folder in the picker
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, PathPicker))
        assert isinstance(app.screen, PathPicker)
        assert app.screen.query_one(DirectoryTree) is not None
        app.screen.query_one("#picker-path", Input).value = str(tui_index)
        await pilot.click("#choose")
        await settle(pilot, app)
        await until(pilot, lambda: app.screen is app.search_screen and app.searcher is not tui_searcher)
        assert app.screen is app.search_screen
        assert app.searcher is not tui_searcher and app.searcher.index.root == tui_index
        assert app.search_screen.response is None  # results of the old index are gone
        assert app.encoder_state == "ready"
