"""Query files: XOR-TyDi JSON Lines or ``id<TAB>text`` TSV.

XOR-TyDi rows are ``{"id", "question", "answers": [..], "lang"}``; the real
files write Arabic as ``" ar"``, which :func:`normalize_code` repairs. A row's
own ``lang`` wins; the ``lang=`` argument is the fallback for rows without
one and is required for TSV, which has no language column.
"""
from __future__ import annotations

import csv

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import InputError
from ..languages import is_known, normalize_code
from ..types import Query
from ._common import check_encodable, check_id, check_write_id, detect_format, get_id, get_lang, is_blank, iter_lines, \
    json_type, parse_json_object
from .atomic import atomic_open

_ID_KEYS = ("id", "qid", "query_id")
_TEXT_KEYS = ("question", "query", "text")
_TSV_HEADERS = {(a, b) for a in ("id", "qid", "query_id") for b in ("text", "query", "question")}


def read_queries(path: str | Path, lang: str | None = None) -> list[Query]:
    """Read queries; duplicate ids, empty questions and unknown languages are InputErrors."""
    path = Path(path)
    seen: dict[str, int] = {}
    out: list[Query] = []
    for lineno, query in iter_queries_with_lines(path, lang):
        first = seen.get(query.qid)
        if first is not None:
            raise InputError(path, lineno, f"duplicate query id {query.qid!r} (first on line {first})",
                             field="id")
        seen[query.qid] = lineno
        out.append(query)
    return out


def iter_queries_with_lines(path: str | Path, lang: str | None = None) -> Iterator[tuple[int, Query]]:
    """Stream ``(line_number, Query)`` in file order (no duplicate check)."""
    path = Path(path)
    default = _check_lang_argument(path, lang)
    if detect_format(path, "query") == "tsv":
        if default is None:
            raise InputError(path, None, "a TSV query file has no language column",
                             hint="pass the language, e.g. lang='ja' (--lang ja)")
        yield from _iter_tsv(path, default)
    else:
        yield from _iter_jsonl(path, default)


def write_queries_jsonl(path: str | Path, queries: Iterable[Query]) -> int:
    """Write queries in the XOR-TyDi layout atomically; returns the count."""
    n = 0
    with atomic_open(path, "w") as fh:
        for q in queries:
            check_write_id(path, "query id", q.qid)
            fh.write(json.dumps({"id": q.qid, "question": q.text, "answers": list(q.answers),
                                 "lang": q.lang}, ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n


def _check_lang_argument(path: Path, lang: str | None) -> str | None:
    if lang is None:
        return None
    code = normalize_code(lang)
    if not code or not is_known(code):
        raise InputError(path, None, f"unknown language code {lang!r} given for this file",
                         hint=f"register it first: xqg_tui.languages.register_language({code!r}, NAME)")
    return code


def _iter_jsonl(path: Path, default: str | None) -> Iterator[tuple[int, Query]]:
    for lineno, text in iter_lines(path):
        if is_blank(text):
            continue
        obj = parse_json_object(path, lineno, text)
        qid = get_id(path, lineno, obj, _ID_KEYS)
        question = _get_question(path, lineno, obj)
        answers = _get_answers(path, lineno, obj.get("answers"))
        if obj.get("lang") is not None:
            code = get_lang(path, lineno, obj["lang"], "lang")
        elif default is not None:
            code = default
        else:
            raise InputError(path, lineno, "missing (and no lang= given for the file)", field="lang")
        yield lineno, Query(qid=qid, text=question, lang=code, answers=answers)


def _get_question(path: Path, lineno: int, obj: dict[str, Any]) -> str:
    for key in _TEXT_KEYS:
        if key in obj:
            value = obj[key]
            if not isinstance(value, str):
                raise InputError(path, lineno, f"expected a string, got {json_type(value)}", field=key)
            if not value.strip():
                raise InputError(path, lineno, "is empty", field=key)
            return check_encodable(path, lineno, key, value)
    raise InputError(path, lineno, "missing", field="question")


def _get_answers(path: Path, lineno: int, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError(path, lineno, f"expected an array of strings, got {json_type(value)}",
                         field="answers")
    for i, answer in enumerate(value):
        if not isinstance(answer, str):
            raise InputError(path, lineno, f"expected a string, got {json_type(answer)}",
                             field=f"answers[{i}]")
        # An empty answer string would match every passage in answer recall (R@kt).
        if not answer.strip():
            raise InputError(path, lineno, "is empty", field=f"answers[{i}]")
        check_encodable(path, lineno, f"answers[{i}]", answer)
    return tuple(value)


def _tsv_fields(line: str) -> list[str]:
    """Tab-separated fields, with CSV-style double-quoted fields read as a TSV corpus
    reads them (a quoted field may hold a tab); a line that is not valid quoting
    (a question that merely starts with a quote) is split on tabs as it stands."""
    fields = line.split("\t")
    if '"' in line:
        try:
            quoted = next(csv.reader([line], delimiter="\t", quotechar='"', strict=True))
        except csv.Error:
            return fields
        if len(quoted) == 2:
            return quoted
    return fields


def _iter_tsv(path: Path, lang: str) -> Iterator[tuple[int, Query]]:
    first = True
    for lineno, text in iter_lines(path):
        if is_blank(text):
            continue
        fields = _tsv_fields(text)
        if first:
            first = False
            if tuple(f.strip().lower() for f in fields) in _TSV_HEADERS:
                continue
        if len(fields) != 2:
            raise InputError(path, lineno, f"expected 2 tab-separated fields (id, text), found {len(fields)}")
        qid = check_id(path, lineno, "id", fields[0])
        if not fields[1].strip():
            raise InputError(path, lineno, "is empty", field="text")
        yield lineno, Query(qid=qid, text=fields[1], lang=lang)
