"""The passage inspector: generated queries by language, similarities, contributions."""
from __future__ import annotations

from textual.widgets import Static

from tui_fixtures import BIG_ALPHA, JA_QUERY, plain_text, run_async, settle, tui_index, tui_searcher  # noqa: F401
from xqg_tui.tui.app import create_app
from xqg_tui.tui.screens.inspector import InspectorScreen
from xqg_tui.tui.util import fmt_score
from xqg_tui.tui.widgets import ResultsTable


async def _open_inspector(pilot, app, key: str = "i") -> InspectorScreen:
    await pilot.press(*JA_QUERY, "enter")
    await settle(pilot, app)
    await pilot.press(key)
    await pilot.pause()
    assert isinstance(app.screen, InspectorScreen)
    return app.screen


@run_async
async def test_inspector_shows_generated_queries_and_scores(tui_searcher):
    app = create_app(searcher=tui_searcher, alpha=BIG_ALPHA, show_timings=False)
    async with app.run_test(size=(120, 50)) as pilot:
        scr = await _open_inspector(pilot, app)
        hit = scr.hit
        top = app.search_screen.query_one("#augmented", ResultsTable).hits[0]
        assert hit.docid == top.docid
        row = tui_searcher.index.docid_index[hit.docid]
        generated = tui_searcher.index.generated(row)
        state = app.search_screen.state
        expected = {(m.lang, m.number): m.score for m in tui_searcher.matched_queries(row, state.vector, ["ja", "fi", "ru"])}
        stars = 0
        for lang in ("ja", "fi", "ru"):
            text = plain_text(scr.query_one(f"#gen-{lang}", Static))
            assert "counted in xQG" in text
            for j, q in enumerate(generated[lang]):
                assert q in text
                assert fmt_score(expected[(lang, j)]) in text
            stars += text.count("★")
        assert stars == 3  # the three best-matching generated queries are highlighted
        contrib = plain_text(scr.query_one("#insp-contrib", Static))
        for lang in ("ja Japanese", "fi Finnish", "ru Russian", "passage"):
            assert lang in contrib
        assert f"{hit.score:.1f}" in contrib  # the parts add up to the xQG score
        head = plain_text(scr.query_one("#insp-head", Static))
        assert f"xQG rank {hit.rank}" in head and f"plain rank {hit.other_rank}" in head
        # next / previous hit without leaving the screen
        await pilot.press("n")
        assert scr.hit.docid == app.search_screen.query_one("#augmented", ResultsTable).hits[1].docid
        await pilot.press("p")
        assert scr.hit.docid == top.docid
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.search_screen


@run_async
async def test_inspector_marks_unchecked_languages_and_plain_hits(tui_searcher):
    app = create_app(searcher=tui_searcher, alpha=BIG_ALPHA, show_timings=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*JA_QUERY, "enter")
        await settle(pilot, app)
        await pilot.click("#lang-fi")
        await settle(pilot, app)
        # inspect from the plain ranking
        app.search_screen.query_one("#plain", ResultsTable).focus()
        await pilot.press("enter")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, InspectorScreen) and not scr.in_augmented
        assert "not counted" in plain_text(scr.query_one("#gen-fi", Static))
        assert "counted in xQG" in plain_text(scr.query_one("#gen-ja", Static))
        contrib = plain_text(scr.query_one("#insp-contrib", Static))
        assert "fi Finnish" not in contrib and "ja Japanese" in contrib
        assert f"plain rank {scr.hit.rank}" in plain_text(scr.query_one("#insp-head", Static))
