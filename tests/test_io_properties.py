"""Property-based tests: every reader either loads a file or raises InputError.

Never another exception type, never a message without the file path, and never
a silent drop: when a file loads, every non-blank line became a row. When it
does not load, the reported line is the first bad one (everything before it
loads on its own).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xqg_tui.errors import InputError
from xqg_tui.io import (
    load_npy,
    read_corpus,
    read_generated,
    read_qrels,
    read_queries,
    read_run,
    write_corpus_jsonl,
    write_generated_jsonl,
    write_qrels,
    write_queries_jsonl,
    write_run,
)
from xqg_tui.languages import PAPER_LANGUAGES
from xqg_tui.types import Passage, Query

# XQG_HYPOTHESIS_EXAMPLES raises the example count for a longer local shake-out.
SETTINGS = settings(max_examples=int(os.environ.get("XQG_HYPOTHESIS_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _n(result: Any) -> int:
    return len(result)


def _n_nested(result: dict[str, Any]) -> int:
    # qrels / runs: one row per judgement or ranked document.
    return sum(len(v) for v in result.values())


KNOWN = {f"d{i}" for i in range(5)} | {"1", "2"}

# name -> (file suffix, reader, row counter, how rows relate to non-blank lines)
READERS: dict[str, tuple[str, Callable[[Path], Any], Callable[[Any], int], str]] = {
    "corpus_jsonl": (".jsonl", read_corpus, _n, "lines"),
    "corpus_tsv": (".tsv", read_corpus, _n, "tsv_corpus"),
    "queries_jsonl": (".jsonl", read_queries, _n, "lines"),
    "queries_jsonl_lang": (".jsonl", lambda p: read_queries(p, lang=" ar"), _n, "lines"),
    "queries_tsv": (".tsv", lambda p: read_queries(p, lang="ja"), _n, "maybe_header"),
    "qrels": (".trec", read_qrels, _n_nested, "lines"),
    "run": (".run", read_run, _n_nested, "lines"),
    "generated": (".jsonl", read_generated, _n, "lines"),
    "generated_known": (".jsonl", lambda p: read_generated(p, known_docids=KNOWN), _n, "lines"),
}


def _nonblank(data: bytes) -> list[bytes]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return [line for line in data.split(b"\n") if line.strip(b" \t\r\n")]


def _physical_lines(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def _check(name: str, data: bytes) -> None:
    """The core property, for one reader and one file content."""
    suffix, reader, count_rows, rows = READERS[name]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(data)
        try:
            result = reader(path)
        except InputError as err:
            message = str(err)
            assert message.startswith(str(path)), message
            assert "\n" not in err.one_line()
            if err.line is not None:
                assert f"{path}:{err.line}:" in message
                assert 1 <= err.line <= max(1, _physical_lines(data)), (err.line, message)
                # Everything before the reported line is fine on its own.
                prefix = b"\n".join(data.split(b"\n")[: err.line - 1])
                path.write_bytes(prefix + b"\n" if prefix else b"")
                reader(path)
            return
        nonblank = _nonblank(data)
        count = count_rows(result)
        if rows == "lines":
            assert count == len(nonblank), (count, nonblank)
        elif rows == "maybe_header":
            header = nonblank and nonblank[0].strip().lower() in (b"id\ttext", b"qid\ttext", b"id\tquery",
                                                                  b"qid\tquery", b"id\tquestion",
                                                                  b"qid\tquestion", b"query_id\ttext")
            assert count == len(nonblank) - (1 if header else 0)
        else:  # TSV corpus: quoted fields may span lines; a header line is required
            assert count <= max(0, len(nonblank) - 1)


FRAGMENTS = [
    '{"docid": "a", "text": "x"}', '{"id": 1, "question": "q", "lang": "ar"}',
    '{"docid": "d1", "generated_queries": {"ar": ["q"]}}', '{"id": "a", "question": "q", "answers": ["x"]}',
    "id\ttext\ttitle", "id\ttext", "1\thello\tT", "1\tq", 'a\t"quoted ""x"""\tT', '"', '"\t',
    "q1 0 d1 1", "q1 Q0 d1 1 0.5 t", "q1 Q0 d2 2 nan t", "q2 0 d1 x", "{", "}", "[", "]", ",", ":",
    "\t", " ", "\r", "\\ud800", "\\u0000", "null", "true", "1e999", "-0", '"lang": " xx"', "\x00",
    "\u3000", "\x1c", "ü", "日本", '"text": []', '"docid": "a b"',
]

line_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=6), max_size=5).map("".join)
structured_bytes = st.lists(line_text, max_size=8).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass"))
raw_bytes = st.binary(max_size=200)
mixed_bytes = st.lists(structured_bytes | raw_bytes, min_size=1, max_size=3).map(b"\n".join)


@pytest.mark.parametrize("name", sorted(READERS))
@SETTINGS
@given(data=raw_bytes | structured_bytes | mixed_bytes)
def test_reader_on_arbitrary_bytes(name: str, data: bytes) -> None:
    _check(name, data)


# ------------------------------------------------------------- JSON-ish rows

json_scalar = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8)
json_value = st.recursive(json_scalar, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
KEYS = ["docid", "id", "_id", "title", "text", "question", "answers", "lang", "generated_queries", "other"]


@st.composite
def field_value(draw: st.DrawFn, key: str) -> Any:
    """Mostly plausible values for the key, sometimes anything."""
    if draw(st.integers(0, 4)) == 0:
        return draw(json_value)
    if key in ("docid", "id", "_id"):
        return draw(st.sampled_from(["a", "1", "d1", "d2", 7, "", "x y"]))
    if key == "lang":
        return draw(st.sampled_from(["ar", " ar", "JA", "xx", "", "ko-KR"]))
    if key == "answers":
        return draw(st.lists(st.sampled_from(["x", "", "2006"]) | json_scalar, max_size=3))
    if key == "generated_queries":
        return draw(st.dictionaries(st.sampled_from(["ar", " bn", "xx", "FI", "ja"]),
                                    st.lists(st.sampled_from(["q", " ", "what?"]) | json_scalar, max_size=3),
                                    max_size=3))
    return draw(st.sampled_from(["text", " ", "", "ü\u00a0"]) | st.text(max_size=5))


def _valid_row(draw: st.DrawFn, schema: str, i: int) -> dict[str, Any]:
    # Ids mostly unique (from the line index), sometimes colliding.
    ident_ = draw(st.sampled_from([f"d{i}", f"d{i}", f"d{i}", "d1", i]))
    if schema == "corpus":
        return {"docid": ident_, "title": draw(st.sampled_from(["", "T", None])), "text": draw(nonblank_text)}
    if schema == "queries":
        row = {"id": ident_, "question": draw(nonblank_text), "answers": draw(st.lists(nonblank_text, max_size=2))}
        if draw(st.booleans()):
            row["lang"] = draw(st.sampled_from(["ar", " ar", "JA", "te"]))
        return row
    return {"docid": ident_, "generated_queries": draw(st.dictionaries(
        st.sampled_from(["ar", " bn", "FI", "ja"]), st.lists(nonblank_text, max_size=2), max_size=3))}


@st.composite
def jsonish_lines(draw: st.DrawFn, schema: str) -> bytes:
    """Mostly valid rows of the schema, some mutated, some blank, some junk."""
    lines = []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 19))
        if kind == 0:
            lines.append(draw(st.sampled_from(["", "  ", "\t", "\r"])))
        elif kind == 1:
            lines.append(json.dumps(draw(json_value)))
        elif kind == 2:
            lines.append(draw(line_text))
        elif kind <= 5:
            row = _valid_row(draw, schema, i)
            key = draw(st.sampled_from(KEYS))
            if draw(st.booleans()):
                row.pop(key, None)
            else:
                row[key] = draw(field_value(key))
            lines.append(json.dumps(row))
        else:
            lines.append(json.dumps(_valid_row(draw, schema, i), ensure_ascii=draw(st.booleans())))
    return "\n".join(lines).encode("utf-8")


SCHEMA = {"corpus_jsonl": "corpus", "queries_jsonl": "queries", "queries_jsonl_lang": "queries",
          "generated": "generated", "generated_known": "generated"}


@pytest.mark.parametrize("name", sorted(SCHEMA))
@SETTINGS
@given(data=st.data())
def test_jsonl_reader_on_jsonish_rows(name: str, data: st.DataObject) -> None:
    _check(name, data.draw(jsonish_lines(SCHEMA[name])))


tsv_field = st.sampled_from(["x", "hello world", '"quoted"', '"a ""b"" c"', '"two\nlines"', '"open', "", " ",
                             'mid"quote', "ü", "\r"]) | st.text(st.characters(blacklist_categories=("Cs",),
                                                                             blacklist_characters="\t\n"),
                                                              max_size=5)


@st.composite
def tsv_lines(draw: st.DrawFn, columns: int, header: list[str]) -> bytes:
    lines = ["\t".join(header)] if draw(st.integers(0, 5)) else []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append(draw(st.sampled_from(["", " ", "\t"])))
        elif kind <= 2:
            fields = draw(st.lists(tsv_field, min_size=1, max_size=columns + 1))
            lines.append("\t".join(fields))
        else:
            fields = [f"d{i}", f"text {i}", "T"][:columns]
            lines.append("\t".join(fields))
    return "\n".join(lines).encode("utf-8")


@SETTINGS
@given(data=tsv_lines(3, ["id", "text", "title"]))
def test_tsv_corpus_on_plausible_rows(data: bytes) -> None:
    _check("corpus_tsv", data)


@SETTINGS
@given(data=tsv_lines(2, ["id", "text"]))
def test_tsv_queries_on_plausible_rows(data: bytes) -> None:
    _check("queries_tsv", data)


@st.composite
def trec_lines(draw: st.DrawFn, kind: str) -> bytes:
    token = st.sampled_from(["q1", "q2", "0", "Q0", "d1", "d2", "1", "2", "-1", "0.5", "1e3", "nan", "inf",
                             "x", "\u0661", "1_0", ".5", "5.", "tag"])
    sep = st.sampled_from([" ", "\t", "  ", " \t"])
    lines = []
    for i in range(draw(st.integers(0, 8))):
        choice = draw(st.integers(0, 9))
        if choice <= 2:
            toks = [draw(token) for _ in range(draw(st.integers(0, 7)))]
            lines.append(draw(sep).join(toks) if toks else draw(st.sampled_from(["", " "])))
        else:
            q = draw(st.sampled_from(["q1", "q2"]))
            d = draw(st.sampled_from([f"d{i}", f"d{i}", "d1"]))
            if kind == "qrels":
                toks = [q, "0", d, str(draw(st.integers(-1, 3)))]
            else:
                score = draw(st.floats(allow_nan=False, allow_infinity=False, width=32))
                toks = [q, "Q0", d, str(draw(st.integers(0, 5))), repr(score), "t"]
            lines.append(draw(sep).join(toks))
    return "\n".join(lines).encode()


@pytest.mark.parametrize("name", ["qrels", "run"])
@SETTINGS
@given(data=st.data())
def test_trec_readers_on_token_soup(name: str, data: st.DataObject) -> None:
    _check(name, data.draw(trec_lines(name)))


# ------------------------------------------------------------- valid data: round trips and mutations

ident = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=8) \
    .filter(lambda s: s.split() == [s])
nonblank_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30) \
    .filter(lambda s: s.strip(" \t\r\n") and s.strip())
plain_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@SETTINGS
@given(passages=st.lists(st.builds(Passage, ident, plain_text, nonblank_text), max_size=6,
                         unique_by=lambda p: p.docid))
def test_corpus_round_trip(passages: list[Passage]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.jsonl"
        write_corpus_jsonl(path, passages)
        assert read_corpus(path) == passages


@SETTINGS
@given(queries=st.lists(st.builds(Query, ident, nonblank_text, st.sampled_from(PAPER_LANGUAGES),
                                  st.lists(nonblank_text, max_size=3).map(tuple)),
                        max_size=6, unique_by=lambda q: q.qid))
def test_queries_round_trip(queries: list[Query]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.jsonl"
        write_queries_jsonl(path, queries)
        assert read_queries(path) == queries


@SETTINGS
@given(qrels=st.dictionaries(ident, st.dictionaries(ident, st.integers(-3, 3), min_size=1, max_size=4),
                             max_size=4))
def test_qrels_round_trip(qrels: dict[str, dict[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.trec"
        write_qrels(path, qrels)
        assert read_qrels(path) == qrels


@SETTINGS
@given(run=st.dictionaries(ident, st.lists(st.tuples(ident, st.floats(allow_nan=False, allow_infinity=False)),
                                            min_size=1, max_size=5, unique_by=lambda t: t[0]), max_size=4))
def test_run_round_trip(run: dict[str, list[tuple[str, float]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.run"
        write_run(path, run)
        assert read_run(path) == run  # write order is kept because ranks are 1..n


@SETTINGS
@given(gen=st.dictionaries(ident, st.dictionaries(st.sampled_from(PAPER_LANGUAGES),
                                                  st.lists(nonblank_text, max_size=3), max_size=4), max_size=5))
def test_generated_round_trip(gen: dict[str, dict[str, list[str]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.jsonl"
        write_generated_jsonl(path, gen)
        assert read_generated(path, known_docids=set(gen)) == gen


VALID_ROWS: dict[str, tuple[Callable[[int], dict[str, Any]], Callable[[Path], Any]]] = {
    "corpus": (lambda i: {"docid": f"d{i}", "title": f"T{i}", "text": f"passage {i}"}, read_corpus),
    "queries": (lambda i: {"id": f"q{i}", "question": f"question {i}", "answers": ["a"], "lang": "ja"},
                read_queries),
    "generated": (lambda i: {"docid": f"d{i}", "generated_queries": {"ar": ["x"], "te": ["y", "z"]}},
                  lambda p: read_generated(p, known_docids={f"d{i}" for i in range(10)})),
}


@pytest.mark.parametrize("kind", sorted(VALID_ROWS))
@SETTINGS
@given(n=st.integers(1, 6), data=st.data())
def test_random_field_mutation(kind: str, n: int, data: st.DataObject) -> None:
    """Mutate one field of one valid row: the file loads completely, or the error names that row."""
    make, reader = VALID_ROWS[kind]
    rows = [make(i) for i in range(n)]
    target = data.draw(st.integers(0, n - 1))
    row = rows[target]
    key = data.draw(st.sampled_from(sorted(row) + ["extra"]))
    if data.draw(st.booleans()) and key in row:
        del row[key]
    else:
        row[key] = data.draw(field_value(key) | json_value)
    blank_every = data.draw(st.integers(2, 4))
    lines: list[str] = []
    line_of: list[int] = []
    for i, r in enumerate(rows):
        if i % blank_every == 1:
            lines.append("")
        lines.append(json.dumps(r))
        line_of.append(len(lines))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            result = reader(path)
        except InputError as err:
            assert str(err).startswith(f"{path}:")
            mutated = line_of[target]
            # Either the mutated row itself, or a later row that now duplicates its id.
            assert err.line == mutated or f"first on line {mutated}" in str(err) or (
                err.line is not None and err.line > mutated and "first on line" in str(err)
            ), (str(err), mutated)
            return
        assert len(result) == n


@SETTINGS
@given(data=st.binary(max_size=300) | st.builds(lambda a, b: a + b, st.sampled_from([
    b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
    b"\x93NUMPY\x01\x00\x10\x00{'descr': '|O'}", b"\x93NUMPY", b"PK\x03\x04", b"\x80\x04"]),
    st.binary(max_size=100)))
def test_load_npy_on_arbitrary_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npy"
        path.write_bytes(data)
        for mmap in (False, True):
            try:
                arr = load_npy(path, mmap=mmap)
            except InputError as err:
                assert str(err).startswith(f"{path}:")
                continue
            assert isinstance(arr, np.ndarray) and not arr.dtype.hasobject


def test_check_detects_a_silent_drop(tmp_path: Path) -> None:
    """The property itself can fail: a reader that skips a row is caught."""
    READERS["_dropper"] = (".jsonl", lambda p: read_corpus(p)[1:], _n, "lines")
    try:
        with pytest.raises(AssertionError):
            _check("_dropper", b'{"docid": "a", "text": "x"}\n{"docid": "b", "text": "y"}\n')
    finally:
        del READERS["_dropper"]


def test_check_detects_a_wrong_line_number() -> None:
    """...and so is a reader that blames a later line than the bad one."""
    def late(p: Path) -> Any:
        try:
            return read_corpus(p)
        except InputError as err:
            raise InputError(p, (err.line or 0) + 1, err.problem) from None

    READERS["_late"] = (".jsonl", late, _n, "lines")
    try:
        with pytest.raises((AssertionError, InputError)):
            _check("_late", b'{"docid": "a"}\n{"docid": "b", "text": "y"}\n')
    finally:
        del READERS["_late"]
