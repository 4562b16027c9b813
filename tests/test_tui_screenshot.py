"""The README screenshot helper and run_app's error handling."""
from __future__ import annotations

from pathlib import Path

import pytest

from tui_fixtures import JA_QUERY, tui_index  # noqa: F401
from xqg_tui.errors import XQGError
from xqg_tui.tui.screenshot import main, save_search_screenshot


def test_save_search_screenshot(tui_index: Path, tmp_path: Path):
    out = save_search_screenshot(tui_index, JA_QUERY, tmp_path / "shots" / "search.svg", size=(100, 30), alpha=0.9, device="cpu")
    svg = out.read_text(encoding="utf-8")
    assert out == tmp_path / "shots" / "search.svg"
    assert svg.lstrip().startswith("<svg")
    assert "encoder&#160;ready" in svg or "encoder ready" in svg
    assert "xQG&#160;·&#160;α=0.9" in svg or "xQG · α=0.9" in svg  # the results were drawn
    inspected = save_search_screenshot(tui_index, JA_QUERY, tmp_path / "insp.svg", size=(100, 30), inspect=True, device="cpu")
    assert "generated&#160;queries" in inspected.read_text(encoding="utf-8")


def test_screenshot_of_a_missing_index_fails_in_plain_words(tmp_path: Path, capsys):
    with pytest.raises(XQGError, match="could not be opened"):
        save_search_screenshot(tmp_path / "none", "kysymys", tmp_path / "x.svg", timeout=20)
    assert main([str(tmp_path / "none"), "kysymys", str(tmp_path / "x.svg")]) == 2
    assert "could not be opened" in capsys.readouterr().err
    assert not (tmp_path / "x.svg").exists()


def test_run_app_returns_exit_codes(monkeypatch, capsys, tmp_path: Path):
    from xqg_tui.tui import app as app_module

    def boom(self, *args, **kwargs):
        raise RuntimeError("terminal went away")

    monkeypatch.setattr(app_module.XQGApp, "run", boom)
    assert app_module.run_app(tmp_path) == 1
    err = capsys.readouterr().err
    assert "terminal went away" in err and "Traceback" not in err

    def quits(self, *args, **kwargs):
        self._return_code = 0

    monkeypatch.setattr(app_module.XQGApp, "run", quits)
    assert app_module.run_app(tmp_path, note="demo note", title="xQG demo") == 0
