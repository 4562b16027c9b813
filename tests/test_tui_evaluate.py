"""The evaluation screen: plain vs xQG per language, chart, exports, results JSON."""
from __future__ import annotations

import csv
import io
import json

from textual.widgets import DataTable, Markdown, Static, TabbedContent

from tui_fixtures import BIG_ALPHA, eval_files, plain_text, run_async, settle, tui_index, tui_searcher  # noqa: F401
from xqg_tui.tui.app import create_app
from xqg_tui.tui.dialogs import ErrorDialog
from xqg_tui.tui.report_view import comparison_markdown, comparison_rows, results_markdown
from xqg_tui.tui.screens.evaluate import EvaluateScreen


def table_rows(table: DataTable) -> list[list[str]]:
    return [[plain_text(c).strip() for c in table.get_row_at(i)] for i in range(table.row_count)]


@run_async
async def test_evaluate_plain_vs_xqg_and_export(tui_searcher, eval_files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(searcher=tui_searcher, alpha=BIG_ALPHA, show_timings=False, device="cpu",
                     eval_queries=eval_files["queries"], eval_qrels=eval_files["qrels"])
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("escape")
        await pilot.press("e")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, EvaluateScreen)
        assert "α=0.9" in plain_text(screen.query_one("#eval-info", Static))
        await pilot.click("#eval-run")
        await settle(pilot, app)
        assert screen.comparison is not None
        table = screen.query_one("#eval-table", DataTable)
        rows = table_rows(table)
        assert [r[0] for r in rows] == ["fi Finnish", "ja Japanese", "ru Russian", "macro avg"]
        assert [r[1] for r in rows] == ["2", "2", "2", "6"]
        cmp = screen.comparison_dict
        ja = cmp["per_language"]["ja"]["R@2kt"]
        assert rows[1][2] == f"{ja['base']:.3f}" and rows[1][3] == f"{ja['other']:.3f}"
        assert [str(c.label) for c in table.ordered_columns][2] == "plain R@2kt"
        # metric switch: the table shows another metric
        await pilot.press("m")
        await pilot.pause()
        assert screen.metric == "R@5kt"
        assert "plain R@5kt" in [str(c.label) for c in table.ordered_columns]
        screen.query_one("#eval-metric").value = "MRR@10"
        await pilot.pause()
        mrr = cmp["per_language"]["fi"]["MRR@10"]
        rows = table_rows(screen.query_one("#eval-table", DataTable))
        assert rows[0][3] == f"{mrr['other']:.3f}"
        diff = mrr["other"] - mrr["base"]
        assert rows[0][4].startswith(f"{'+' if diff > 0 else ''}{diff:.3f}")
        # chart tab: one bar group per language + macro
        screen.query_one("#eval-tabs", TabbedContent).active = "tab-chart"
        await pilot.pause()
        assert screen.query_one("#eval-chart").plt is not None
        # exports
        for button, name in (("#export-json", "xqg-eval.json"), ("#export-csv", "xqg-eval.csv"), ("#export-md", "xqg-eval.md")):
            screen.query_one("#eval-tabs", TabbedContent).active = "tab-table"
            await pilot.click(button)
            await pilot.pause()
            assert (tmp_path / name).exists()
        data = json.loads((tmp_path / "xqg-eval.json").read_text())
        assert data["comparison"]["per_language"]["ja"]["R@2kt"]["base"] == ja["base"]
        assert data["settings"]["alpha"] == BIG_ALPHA and data["settings"]["n_queries"] == 6
        reader = list(csv.reader(io.StringIO((tmp_path / "xqg-eval.csv").read_text())))
        assert reader[0][:3] == ["lang", "metric", "base"]
        assert any(r[0] == "macro" for r in reader[1:])
        assert "| fi |" in (tmp_path / "xqg-eval.md").read_text()
        # the exported JSON opens again as a results file
        screen.query_one("#eval-file").value = "xqg-eval.json"
        await pilot.click("#open-results")
        await pilot.pause()
        assert screen.query_one("#eval-tabs", TabbedContent).active == "tab-results"
        assert "| fi |" in screen.query_one("#results-md", Markdown).source


@run_async
async def test_open_experiment_results_and_bad_files(tui_searcher, tmp_path):
    experiment = tmp_path / "experiment.json"
    experiment.write_text(json.dumps({"name": "langs", "markdown": "| langs | R@2kt |\n|---|---|\n| 7 | 0.61 |\n"}))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    app = create_app(searcher=tui_searcher, show_timings=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.action_show("evaluate")
        await pilot.pause()
        screen = app.screen
        assert screen.open_results(experiment)
        await pilot.pause()
        assert "| 7 | 0.61 |" in screen.query_one("#results-md", Markdown).source
        assert not screen.open_results(broken)
        assert not screen.open_results(tmp_path / "missing.json")
        await pilot.pause()
        messages = [str(n.message) for n in app._notifications]
        assert any("not a JSON file" in m for m in messages) and any("no such file" in m for m in messages)
        # a missing queries file: a dialog in plain words, the app keeps running
        screen.query_one("#eval-queries").value = str(tmp_path / "nope.jsonl")
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert isinstance(app.screen, ErrorDialog)
        assert "nope.jsonl" in plain_text(app.screen.query_one("#error-message", Static))
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen and not screen.running


def test_results_markdown_shapes():
    cmp = {
        "per_language": {"ja": {"R@2kt": {"base": 0.5, "other": 0.75, "diff": 0.25, "p_value": 0.01, "significant": True, "n": 4}}},
        "macro": {"R@2kt": {"base": 0.5, "other": 0.75, "diff": 0.25, "p_value": None, "significant": None, "n": 4}},
    }
    rows = comparison_rows(cmp)
    assert list(rows) == ["ja", "macro"]
    md = comparison_markdown(cmp)
    assert "| ja | 0.500 → 0.750* (+0.250, p 0.010) |" in md
    assert results_markdown({"comparison": cmp}) == comparison_markdown(cmp)
    table = results_markdown({"rows": [{"langs": 1, "R@2kt": 0.5}, {"langs": 7, "R@2kt": 0.625}]})
    assert "| langs | R@2kt |" in table and "| 7 | 0.6250 |" in table
    assert results_markdown({"odd": [1, 2]}).startswith("```json")
