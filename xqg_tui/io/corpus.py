"""Passage corpora: JSON Lines (``docid``/``id``, ``title``, ``text``) or DPR-style TSV.

The TSV form is the one of DPR's ``psgs_w100.tsv``: a header naming the
columns (``id\\ttext\\ttitle``, any order) and CSV-style double-quoted fields,
so it is parsed with :mod:`csv` using a tab delimiter.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import InputError
from ..types import Passage
from . import _common
from ._common import check_id, check_write_id, detect_format, get_id, get_text, is_blank, iter_lines, \
    parse_json_object
from .atomic import atomic_open

_ID_KEYS = ("docid", "id", "_id")
_TSV_ID_COLUMNS = ("id", "docid", "_id")


def iter_corpus(path: str | Path) -> Iterator[Passage]:
    """Stream the passages of a corpus file in file order (constant memory).

    Does not look for duplicate docids (that needs memory); :func:`read_corpus` does.
    """
    for _, passage in iter_corpus_with_lines(path):
        yield passage


def iter_corpus_with_lines(path: str | Path) -> Iterator[tuple[int, Passage]]:
    """Like :func:`iter_corpus`, also yielding each passage's (first) line number."""
    path = Path(path)
    if detect_format(path, "corpus") == "tsv":
        yield from _iter_tsv(path)
    else:
        yield from _iter_jsonl(path)


def read_corpus(path: str | Path) -> list[Passage]:
    """Read a whole corpus; a docid seen twice is an InputError naming both lines."""
    path = Path(path)
    seen: dict[str, int] = {}
    out: list[Passage] = []
    for lineno, passage in iter_corpus_with_lines(path):
        first = seen.get(passage.docid)
        if first is not None:
            raise InputError(path, lineno, f"duplicate docid {passage.docid!r} (first on line {first})",
                             field="docid")
        seen[passage.docid] = lineno
        out.append(passage)
    return out


def write_corpus_jsonl(path: str | Path, passages: Iterable[Passage]) -> int:
    """Write passages as JSON Lines (``docid``, ``title``, ``text``) atomically; returns the count."""
    n = 0
    with atomic_open(path, "w") as fh:
        for p in passages:
            check_write_id(path, "docid", p.docid)
            fh.write(json.dumps({"docid": p.docid, "title": p.title, "text": p.text},
                                ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Passage]]:
    for lineno, text in iter_lines(path):
        if is_blank(text):
            continue
        obj = parse_json_object(path, lineno, text)
        docid = get_id(path, lineno, obj, _ID_KEYS)
        title = get_text(path, lineno, obj, "title", required=False, allow_empty=True)
        body = get_text(path, lineno, obj, "text")
        yield lineno, Passage(docid=docid, title=title, text=body)


def _ensure_csv_field_limit() -> None:
    # csv's default 128 KiB field cap would reject long passages; the record
    # cap below (MAX_LINE_BYTES) is what really bounds memory.
    want = _common.MAX_LINE_BYTES + 1
    if csv.field_size_limit() < want:
        csv.field_size_limit(want)


def _iter_tsv(path: Path) -> Iterator[tuple[int, Passage]]:
    _ensure_csv_field_limit()
    limit = _common.MAX_LINE_BYTES
    # Lines consumed so far, and size/start of the record being parsed: a quoted
    # field may span lines, and an unclosed quote must not swallow the file.
    state = {"consumed": 0, "size": 0, "start": 1}

    def feed() -> Iterator[str]:
        for lineno, text in iter_lines(path):
            state["consumed"] = lineno
            state["size"] += len(text) + 1
            if state["size"] > limit:
                raise InputError(path, state["start"], "record is longer than the line limit "
                                 "(an unclosed double quote?)")
            yield text + "\n"

    reader = csv.reader(feed(), delimiter="\t", quotechar='"', strict=True)
    header: list[str] | None = None
    id_col = text_col = title_col = -1
    while True:
        state["start"] = state["consumed"] + 1
        state["size"] = 0
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            detail = str(exc).replace("\t", "\\t")
            if "end of data" in detail:
                detail = "a double-quoted field is never closed (reached the end of the file)"
            raise InputError(path, state["start"], f"bad TSV quoting: {detail}",
                             hint='a field that starts with " is read as a quoted field, as in DPR '
                                  'psgs_w100.tsv; double the quotes inside it') from None
        lineno = state["start"]
        if all(is_blank(f) for f in row):
            continue
        if header is None:
            header = [f.strip().lower() for f in row]
            id_col, text_col, title_col = _header_columns(path, lineno, header)
            continue
        if len(row) != len(header):
            raise InputError(path, lineno, f"expected {len(header)} tab-separated fields "
                             f"({', '.join(header)}), found {len(row)}")
        docid = check_id(path, lineno, header[id_col], row[id_col])
        body = row[text_col]
        if not body.strip():
            raise InputError(path, lineno, "is empty", field="text")
        title = row[title_col] if title_col >= 0 else ""
        yield lineno, Passage(docid=docid, title=title, text=body)


def _header_columns(path: Path, lineno: int, header: list[str]) -> tuple[int, int, int]:
    hint = "a TSV corpus starts with a header line such as 'id<TAB>text<TAB>title'"
    for name in header:
        if header.count(name) > 1:
            raise InputError(path, lineno, f"column {name!r} appears twice in the header", hint=hint)
    id_cols = [i for i, name in enumerate(header) if name in _TSV_ID_COLUMNS]
    if "text" not in header or not id_cols:
        raise InputError(path, lineno, "no header with 'id' and 'text' columns", hint=hint)
    if len(id_cols) > 1:
        raise InputError(path, lineno, "more than one id column in the header", hint=hint)
    title_col = header.index("title") if "title" in header else -1
    return id_cols[0], header.index("text"), title_col
