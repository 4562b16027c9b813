"""Index rows read on demand (``index/lines.py``): the same rows as parsing the whole
file, a clear error naming the line for a damaged one, nothing loaded at open."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from xqg_tui.errors import IndexError_
from xqg_tui.index import lines as lines_mod
from xqg_tui.index.lines import ConcatRows, JsonLines, line_offsets


def _write(path: Path, rows: list[dict], trailing_newline: bool = True) -> Path:
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
    path.write_text(text + ("\n" if trailing_newline and rows else ""), encoding="utf-8")
    return path


ROWS = [{"docid": f"d{i}", "text": "ключ 東京 " * (i % 7) + str(i)} for i in range(200)]


@pytest.mark.parametrize("trailing", [True, False])
def test_rows_equal_a_full_parse(tmp_path, monkeypatch, trailing):
    monkeypatch.setattr(lines_mod, "_SCAN_BYTES", 64)  # many scan chunks, lines across chunk edges
    rows = JsonLines(_write(tmp_path / "a.jsonl", ROWS, trailing), dict)
    assert len(rows) == len(ROWS)
    assert rows[0] == ROWS[0] and rows[-1] == ROWS[-1] and rows[117] == ROWS[117]
    assert rows[5:9] == ROWS[5:9] and list(rows) == ROWS
    with pytest.raises(IndexError):
        rows[200]


def test_empty_file(tmp_path):
    rows = JsonLines(_write(tmp_path / "e.jsonl", []), dict)
    assert len(rows) == 0 and list(rows) == [] and line_offsets(tmp_path / "e.jsonl").tolist() == [0]


def test_damaged_row_names_file_and_line(tmp_path):
    path = _write(tmp_path / "d.jsonl", ROWS[:5])
    text = path.read_text(encoding="utf-8").splitlines(keepends=True)
    text[2] = "{broken\n"
    path.write_text("".join(text), encoding="utf-8")
    rows = JsonLines(path, dict)  # opening parses nothing
    assert rows[1] == ROWS[1]
    with pytest.raises(IndexError_, match=r"d\.jsonl:3: damaged line"):
        rows[2]
    with pytest.raises(IndexError_, match=r"d\.jsonl:3: damaged line"):
        list(rows)


def test_concat_rows(tmp_path):
    a = JsonLines(_write(tmp_path / "a.jsonl", ROWS[:3]), dict)
    b = JsonLines(_write(tmp_path / "b.jsonl", ROWS[3:10]), dict)
    both = ConcatRows([a, b])
    assert len(both) == 10 and list(both) == ROWS[:10] and both[3] == ROWS[3] and both[-1] == ROWS[9]
    assert both[2:5] == ROWS[2:5]
