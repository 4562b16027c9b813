"""Generated queries: ``{"docid": ..., "generated_queries": {lang: [query, ...]}}`` per line.

This is the layout of ielab's released ``xor-tydi-xqg-augmented`` shards
(several GB each), hence the streaming :func:`iter_generated`. Passages may
have a different number of queries per language, or none.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import AbstractSet, Iterable, Iterator

from ..errors import InputError
from ..types import GeneratedQueries
from ._common import check_encodable, check_write_id, get_id, get_lang, is_blank, iter_lines, json_type, \
    parse_json_object
from .atomic import atomic_open

_ID_KEYS = ("docid", "id")
_FIELD = "generated_queries"


def iter_generated(path: str | Path, known_docids: AbstractSet[str] | None = None
                   ) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """Stream ``(docid, {lang: [query, ...]})`` in file order (no duplicate check)."""
    for _, docid, queries in iter_generated_with_lines(path, known_docids):
        yield docid, queries


def iter_generated_with_lines(path: str | Path, known_docids: AbstractSet[str] | None = None
                              ) -> Iterator[tuple[int, str, dict[str, list[str]]]]:
    path = Path(path)
    for lineno, text in iter_lines(path):
        if is_blank(text):
            continue
        obj = parse_json_object(path, lineno, text)
        docid = get_id(path, lineno, obj, _ID_KEYS)
        if known_docids is not None and docid not in known_docids:
            raise InputError(path, lineno, f"docid {docid!r} is not in the corpus", field="docid",
                             hint="generated queries must belong to passages of the corpus")
        yield lineno, docid, _parse_queries(path, lineno, obj)


def read_generated(path: str | Path, known_docids: AbstractSet[str] | None = None) -> GeneratedQueries:
    """Read all rows; unknown (when ``known_docids`` is given) or repeated docids are InputErrors."""
    path = Path(path)
    out: GeneratedQueries = {}
    lines: dict[str, int] = {}
    for lineno, docid, queries in iter_generated_with_lines(path, known_docids):
        first = lines.get(docid)
        if first is not None:
            raise InputError(path, lineno, f"duplicate docid {docid!r} (first on line {first})",
                             field="docid")
        lines[docid] = lineno
        out[docid] = queries
    return out


def write_generated_jsonl(path: str | Path,
                          generated: GeneratedQueries | Iterable[tuple[str, dict[str, list[str]]]]) -> int:
    """Write rows in the same layout atomically; returns the number of rows."""
    items = generated.items() if isinstance(generated, dict) else generated
    n = 0
    with atomic_open(path, "w") as fh:
        for docid, queries in items:
            check_write_id(path, "docid", docid)
            fh.write(json.dumps({"docid": docid, _FIELD: queries}, ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n


def _parse_queries(path: Path, lineno: int, obj: dict) -> dict[str, list[str]]:
    if _FIELD not in obj:
        raise InputError(path, lineno, "missing", field=_FIELD)
    by_lang = obj[_FIELD]
    if not isinstance(by_lang, dict):
        raise InputError(path, lineno, f"expected an object {{lang: [queries]}}, got {json_type(by_lang)}",
                         field=_FIELD)
    out: dict[str, list[str]] = {}
    for key, queries in by_lang.items():
        field = f"{_FIELD}.{key}" if key.isidentifier() else f"{_FIELD}[{key!r}]"
        code = get_lang(path, lineno, key, field)
        if code in out:
            raise InputError(path, lineno, f"language {code!r} appears twice (after normalising codes)",
                             field=field)
        if not isinstance(queries, list):
            raise InputError(path, lineno, f"expected an array of strings, got {json_type(queries)}",
                             field=field)
        for i, q in enumerate(queries):
            if not isinstance(q, str):
                raise InputError(path, lineno, f"expected a string, got {json_type(q)}", field=f"{field}[{i}]")
            if not q.strip():
                raise InputError(path, lineno, "is empty", field=f"{field}[{i}]")
            check_encodable(path, lineno, f"{field}[{i}]", q)
        out[code] = queries
    return out
