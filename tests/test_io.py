"""Unit tests for the readers and writers in xqg_tui.io."""
from __future__ import annotations

import errno
import gzip
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from xqg_tui.errors import DiskFullError, InputError, XQGError
from xqg_tui.io import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    iter_corpus,
    iter_generated,
    load_npy,
    read_corpus,
    read_generated,
    read_qrels,
    read_queries,
    read_run,
    save_npy_atomic,
    write_corpus_jsonl,
    write_generated_jsonl,
    write_qrels,
    write_queries_jsonl,
    write_run,
)
from xqg_tui.io import _common, atomic
from xqg_tui.types import Passage, Query

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def put(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def expect_error(fn, path: Path, line: int | None, field: str | None = None, contains: str = "") -> InputError:
    with pytest.raises(InputError) as info:
        fn(path)
    err = info.value
    assert err.path == str(path)
    assert err.line == line, str(err)
    if field is not None:
        assert err.field == field, str(err)
    message = str(err)
    assert message.startswith(f"{path}:{line}:" if line is not None else f"{path}:")
    assert "\n" not in err.one_line()
    assert contains in message, message
    return err


def jl(*rows: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


# ---------------------------------------------------------------- corpus


def test_corpus_jsonl_good(tmp_path: Path) -> None:
    path = put(tmp_path, "c.jsonl", jl(
        {"docid": "d1", "title": "T1", "text": "first"},
        {"id": 7, "text": "second"},  # int id, no title
        "",
        {"_id": "d3", "title": None, "text": "third", "extra": [1, 2]},
    ))
    passages = read_corpus(path)
    assert passages == [Passage("d1", "T1", "first"), Passage("7", "", "second"), Passage("d3", "", "third")]
    assert list(iter_corpus(path)) == passages


def test_corpus_bom_crlf_and_gzip(tmp_path: Path) -> None:
    body = "\ufeff" + '{"docid": "a", "text": "x"}\r\n{"docid": "b", "text": "y"}\r\n'
    assert [p.docid for p in read_corpus(put(tmp_path, "c.jsonl", body))] == ["a", "b"]
    gz = tmp_path / "c.jsonl.gz"
    gz.write_bytes(gzip.compress(body.encode()))
    assert [p.text for p in read_corpus(gz)] == ["x", "y"]


def test_corpus_sniffs_format_without_extension(tmp_path: Path) -> None:
    js = put(tmp_path, "corpus.data", jl({"docid": "a", "text": "x"}))
    assert read_corpus(js)[0].docid == "a"
    tsv = put(tmp_path, "corpus.txt", "id\ttext\ttitle\n1\thello\tT\n")
    assert read_corpus(tsv) == [Passage("1", "T", "hello")]
    odd = put(tmp_path, "corpus.dat", "\n\njust words\n")
    expect_error(read_corpus, odd, 3, contains="cannot tell")


@pytest.mark.parametrize(
    "lines, line, field, contains",
    [
        ([{"docid": "a", "text": "x"}, {"docid": "b", "text": "   "}], 2, "text", "empty"),
        ([{"docid": "a", "text": "x"}, {"docid": "b"}], 2, "text", "missing"),
        ([{"docid": "a", "text": ["x"]}], 1, "text", "got an array"),
        ([{"docid": "a", "text": "x", "title": 3}], 1, "title", "got a number"),
        ([{"text": "x"}], 1, "docid", "missing"),
        ([{"docid": 1.5, "text": "x"}], 1, "docid", "string or integer"),
        ([{"docid": True, "text": "x"}], 1, "docid", "boolean"),
        ([{"docid": "", "text": "x"}], 1, "docid", "empty"),
        ([{"docid": "a b", "text": "x"}], 1, "docid", "whitespace"),
        ([{"docid": "a", "text": "x"}, "", "[1, 2]"], 3, None, "expected a JSON object, got an array"),
        ([{"docid": "a", "text": "x"}, "{\"docid\": \"b\", "], 2, None, "invalid JSON"),
        (['{"docid": "a", "text": "x", "text": "y"}'], 1, "text", "twice"),
        (['{"docid": "a", "text": "\\ud800"}'], 1, "text", "surrogate"),
        (["[" * 100000 + "]" * 100000], 1, None, "JSON"),
        ([{"docid": "a", "text": "x"}, {"docid": "a", "text": "y"}], 2, "docid", "first on line 1"),
    ],
)
def test_corpus_jsonl_errors(tmp_path: Path, lines, line, field, contains) -> None:
    path = put(tmp_path, "c.jsonl", jl(*lines))
    expect_error(read_corpus, path, line, field, contains)


def test_corpus_invalid_utf8_names_line(tmp_path: Path) -> None:
    path = put(tmp_path, "c.jsonl", b'{"docid": "a", "text": "x"}\n\n{"docid": "b", "text": "\xff"}\n')
    expect_error(read_corpus, path, 3, contains="invalid UTF-8")


def test_corpus_refuses_enormous_line(tmp_path: Path) -> None:
    # A real 10 MB+ line, without a newline: must fail on that line, not hang.
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as fh:
        fh.write(b'{"docid": "a", "text": "x"}\n')
        fh.write(b'{"docid": "b", "text": "' + b"a" * (10 * 1024 * 1024) + b'"}')
    expect_error(read_corpus, path, 2, contains="longer than 10 MB")


def test_line_limit_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "MAX_LINE_BYTES", 40)
    row = '{"docid": "a", "text": "' + "x" * 10 + '"}'  # 35 bytes
    ok = row + " " * (40 - len(row))
    assert len(read_corpus(put(tmp_path, "ok.jsonl", ok + "\n"))) == 1
    assert len(read_corpus(put(tmp_path, "ok2.jsonl", ok))) == 1
    expect_error(read_corpus, put(tmp_path, "bad.jsonl", ok + " \n"), 1, contains="longer than 40 bytes")


def test_corpus_missing_file_and_folder(tmp_path: Path) -> None:
    expect_error(read_corpus, tmp_path / "nope.jsonl", None, contains="file not found")
    expect_error(read_corpus, tmp_path, None, contains="folder")


def test_corpus_corrupt_gzip(tmp_path: Path) -> None:
    data = gzip.compress(b'{"docid": "a", "text": "x"}\n' * 100)
    expect_error(read_corpus, put(tmp_path, "c.jsonl.gz", data[: len(data) // 2]), 1, contains="gzip")
    expect_error(read_corpus, put(tmp_path, "d.jsonl.gz", b"not gzip at all"), 1, contains="gzip")


def test_corpus_tsv_dpr_quoting(tmp_path: Path) -> None:
    # Column order from the header; DPR quotes fields and doubles inner quotes.
    content = ('title\tid\ttext\n'
               'Aaron\t1\t"Aaron ( or ; ""Ahärôn"") is a prophet"\n'
               '\n'
               'Multi\t2\t"spans\ttwo\nlines"\n'
               'Plain\t3\tno quotes here\n')
    passages = read_corpus(put(tmp_path, "psgs.tsv", content))
    assert passages == [
        Passage("1", "Aaron", 'Aaron ( or ; "Ahärôn") is a prophet'),
        Passage("2", "Multi", "spans\ttwo\nlines"),
        Passage("3", "Plain", "no quotes here"),
    ]


@pytest.mark.parametrize(
    "content, line, field, contains",
    [
        ("1\thello\tT\n", 1, None, "header"),
        ("id\ttext\ttitle\n1\thello\n", 2, None, "expected 3 tab-separated fields"),
        ("id\ttext\ttitle\n1\thello\tT\n2\t  \tT\n", 3, "text", "empty"),
        ("id\ttext\ttitle\n\n1\thello\tT\n1\tagain\tT\n", 4, "docid", "first on line 3"),
        ("id\ttext\ttitle\n1\thello\tT\n2\t\"bad\"quote\tT\n", 3, None, "quoting"),
        ("id\ttext\ttitle\n1\thello\tT\n2\t\"never closed\tT\n3\tx\ty\n", 3, None, "never closed"),
        ("id\ttext\ttext\n1\ta\tb\n", 1, None, "twice"),
        ("id\ttext\ttitle\n\tx\tT\n", 2, "id", "empty"),
    ],
)
def test_corpus_tsv_errors(tmp_path: Path, content, line, field, contains) -> None:
    expect_error(read_corpus, put(tmp_path, "c.tsv", content), line, field, contains)


def test_corpus_tsv_unclosed_quote_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "MAX_LINE_BYTES", 100)
    content = "id\ttext\ttitle\n1\t\"open\tT\n" + "more text here\n" * 50
    expect_error(read_corpus, put(tmp_path, "c.tsv", content), 2, contains="unclosed double quote")


def test_corpus_write_round_trip(tmp_path: Path) -> None:
    passages = [Passage("a", "T\"1", "line\nbreak\ttab ü"), Passage("42", "", "x")]
    path = tmp_path / "sub" / "out.jsonl"
    assert write_corpus_jsonl(path, iter(passages)) == 2
    assert read_corpus(path) == passages
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- queries


def test_queries_xor_layout(tmp_path: Path) -> None:
    path = put(tmp_path, "q.jsonl", jl(
        {"id": "1", "question": "سؤال", "answers": ["2006"], "lang": " ar", "split": "train"},
        {"id": 2, "question": "Mikä?", "lang": "FI"},
        {"id": "3", "question": "何?", "answers": None},
    ))
    qs = read_queries(path, lang="ja")
    assert qs == [Query("1", "سؤال", "ar", ("2006",)), Query("2", "Mikä?", "fi", ()), Query("3", "何?", "ja", ())]
    # The row's own lang wins over lang=.
    assert read_queries(path, lang="ko")[0].lang == "ar"


@pytest.mark.parametrize(
    "lines, line, field, contains",
    [
        ([{"id": "1", "question": "q", "lang": "ar"}, {"id": "2", "question": "q", "lang": "xx"}], 2, "lang",
         "unknown language code 'xx'"),
        ([{"id": "1", "question": "q"}], 1, "lang", "no lang= given"),
        ([{"id": "1", "question": "  ", "lang": "ar"}], 1, "question", "empty"),
        ([{"id": "1", "lang": "ar"}], 1, "question", "missing"),
        ([{"id": "1", "question": "q", "lang": "ar", "answers": "x"}], 1, "answers", "array"),
        ([{"id": "1", "question": "q", "lang": "ar", "answers": ["a", 3]}], 1, "answers[1]", "number"),
        ([{"id": "1", "question": "q", "lang": "ar", "answers": ["a", ""]}], 1, "answers[1]", "empty"),
        ([{"id": "1", "question": "q", "lang": 5}], 1, "lang", "got a number"),
        ([{"id": "1", "question": "q", "lang": "ar"}, "", {"id": "1", "question": "r", "lang": "ar"}], 3, "id",
         "first on line 1"),
    ],
)
def test_queries_errors(tmp_path: Path, lines, line, field, contains) -> None:
    err = expect_error(read_queries, put(tmp_path, "q.jsonl", jl(*lines)), line, field, contains)
    if "unknown" in contains:
        assert "register_language" in err.hint


def test_queries_tsv(tmp_path: Path) -> None:
    path = put(tmp_path, "q.tsv", "id\ttext\n1\tfirst question\n\n2\tsecond\n")
    assert read_queries(path, lang="ja-JP") == [Query("1", "first question", "ja"), Query("2", "second", "ja")]
    no_header = put(tmp_path, "q2.tsv", "1\tfirst\n")
    assert read_queries(no_header, lang="ko")[0].qid == "1"
    expect_error(lambda p: read_queries(p), path, None, contains="no language column")
    expect_error(lambda p: read_queries(p, lang="zz"), path, None, contains="unknown language code")
    bad = put(tmp_path, "q3.tsv", "1\tok\n2\tone\ttoo many\n")
    expect_error(lambda p: read_queries(p, lang="ko"), bad, 2, contains="found 3")
    empty = put(tmp_path, "q4.tsv", "1\tok\n2\t \n")
    expect_error(lambda p: read_queries(p, lang="ko"), empty, 2, "text", "empty")
    dup = put(tmp_path, "q5.tsv", "1\tok\n1\tagain\n")
    expect_error(lambda p: read_queries(p, lang="ko"), dup, 2, "id", "duplicate")


def test_queries_round_trip(tmp_path: Path) -> None:
    qs = [Query("a", "q1 ü", "ar", ("x", "y")), Query("b", "q2", "te")]
    path = tmp_path / "q.jsonl"
    assert write_queries_jsonl(path, qs) == 2
    assert read_queries(path) == qs


@pytest.mark.realdata
def test_queries_real_xor_tydi() -> None:
    path = DATA / "xor-tydi" / "xor_train_retrieve_eng_span.jsonl"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    qs = read_queries(path)
    assert len(qs) == 15250
    counts: dict[str, int] = {}
    for q in qs:
        counts[q.lang] = counts.get(q.lang, 0) + 1
    # " ar" was normalised; all seven languages present, each with answers.
    assert set(counts) == {"ar", "bn", "fi", "ja", "ko", "ru", "te"}
    assert all(q.answers for q in qs)


# ---------------------------------------------------------------- qrels and runs


def test_qrels_read_write(tmp_path: Path) -> None:
    path = put(tmp_path, "q.trec", "q1 0 d1 1\n\nq1\t0\td2 0\nq2 Q0 d1 -1\n")
    qrels = read_qrels(path)
    assert qrels == {"q1": {"d1": 1, "d2": 0}, "q2": {"d1": -1}}
    out = tmp_path / "out.trec"
    assert write_qrels(out, qrels) == 3
    assert read_qrels(out) == qrels
    assert out.read_text().splitlines()[0] == "q1 0 d1 1"


@pytest.mark.parametrize(
    "content, line, field, contains",
    [
        ("q1 0 d1 1\nq1 0 d2\n", 2, None, "found 3"),
        ("q1 0 d1 1 extra\n", 1, None, "found 5"),
        ("q1 0 d1 1.0\n", 1, "rel", "not an integer"),
        ("q1 0 d1 ١\n", 1, "rel", "not an integer"),
        ("q1 0 d1 1\n\nq1 0 d1 0\n", 3, "docid", "first on line 1"),
    ],
)
def test_qrels_errors(tmp_path: Path, content, line, field, contains) -> None:
    expect_error(read_qrels, put(tmp_path, "q.trec", content), line, field, contains)


def test_qrels_write_refuses_bad_ids(tmp_path: Path) -> None:
    with pytest.raises(XQGError, match="whitespace"):
        write_qrels(tmp_path / "q.trec", {"q 1": {"d": 1}})
    assert not (tmp_path / "q.trec").exists()


def test_run_read_orders_by_rank_then_score(tmp_path: Path) -> None:
    path = put(tmp_path, "r.run", "q1 Q0 d3 3 0.1 t\nq1 Q0 d1 1 0.9 t\nq1 Q0 d2 2 0.5 t\n"
                                  "q2 Q0 a 1 0.2 t\nq2 Q0 b 1 0.7 t\nq2 Q0 c 1 0.7 t\n")
    run = read_run(path)
    assert run["q1"] == [("d1", 0.9), ("d2", 0.5), ("d3", 0.1)]
    assert run["q2"] == [("b", 0.7), ("c", 0.7), ("a", 0.2)]  # rank ties: score desc, then file order


@pytest.mark.parametrize(
    "content, line, field, contains",
    [
        ("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 0.4\n", 2, None, "found 5"),
        ("q1 Q0 d1 x 0.5 t\n", 1, "rank", "not an integer"),
        ("q1 Q0 d1 1 nan t\n", 1, "score", "finite"),
        ("q1 Q0 d1 1 NaN t\n", 1, "score", "finite"),
        ("q1 Q0 d1 1 inf t\n", 1, "score", "finite"),
        ("q1 Q0 d1 1 1e999 t\n", 1, "score", "finite"),
        ("q1 Q0 d1 1 0.5 t\nq2 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n", 3, "docid", "first on line 1"),
    ],
)
def test_run_errors(tmp_path: Path, content, line, field, contains) -> None:
    expect_error(read_run, put(tmp_path, "r.run", content), line, field, contains)


def test_run_write_round_trip(tmp_path: Path) -> None:
    run = {"q1": [("d9", 3.0), ("d1", 0.1 + 0.2), ("d5", -1e-7)], "q2": [("x", float(np.float32(0.25)))]}
    path = tmp_path / "run.trec"
    assert write_run(path, run, tag="mytag") == 4
    lines = path.read_text().splitlines()
    assert lines[0] == "q1 Q0 d9 1 3.0 mytag"
    assert lines[2].split()[3] == "3"
    assert read_run(path) == run


def test_run_write_refuses_nan_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    path.write_text("old content\n")
    with pytest.raises(XQGError, match="nan"):
        write_run(path, {"q": [("a", float("nan"))]})
    with pytest.raises(XQGError, match="twice"):
        write_run(path, {"q": [("a", 1.0), ("a", 0.5)]})
    with pytest.raises(XQGError, match="tag"):
        write_run(path, {"q": [("a", 1.0)]}, tag="two words")
    assert path.read_text() == "old content\n"  # atomic: the failed writes left it alone
    assert [p.name for p in tmp_path.iterdir()] == ["run.trec"]


# ---------------------------------------------------------------- generated queries


def test_generated_good(tmp_path: Path) -> None:
    path = put(tmp_path, "g.jsonl", jl(
        {"docid": "d1", "generated_queries": {"ar": ["a1", "a2"], " bn": ["b1"], "ja": []}},
        "",
        {"id": 2, "generated_queries": {}, "title": "ignored"},
    ))
    gen = read_generated(path, known_docids={"d1", "2", "d3"})
    assert gen == {"d1": {"ar": ["a1", "a2"], "bn": ["b1"], "ja": []}, "2": {}}
    assert list(iter_generated(path)) == list(gen.items())
    out = tmp_path / "out.jsonl"
    assert write_generated_jsonl(out, gen) == 2
    assert read_generated(out) == gen


@pytest.mark.parametrize(
    "lines, line, field, contains",
    [
        ([{"docid": "d1", "generated_queries": {"ar": ["x"]}}, {"docid": "zz", "generated_queries": {}}], 2,
         "docid", "'zz' is not in the corpus"),
        ([{"docid": "d1", "generated_queries": {"xx": ["x"]}}], 1, "generated_queries.xx", "unknown"),
        ([{"docid": "d1", "generated_queries": {"ar": ["x", 1]}}], 1, "generated_queries.ar[1]", "number"),
        ([{"docid": "d1", "generated_queries": {"ar": ["x", " "]}}], 1, "generated_queries.ar[1]", "empty"),
        ([{"docid": "d1", "generated_queries": {"ar": "x"}}], 1, "generated_queries.ar", "array"),
        ([{"docid": "d1", "generated_queries": ["x"]}], 1, "generated_queries", "object"),
        ([{"docid": "d1"}], 1, "generated_queries", "missing"),
        ([{"docid": "d1", "generated_queries": {"ar": ["x"], " AR": ["y"]}}], 1, None, "twice"),
        ([{"docid": "d1", "generated_queries": {}}, {"docid": "d2", "generated_queries": {}},
          {"docid": "d1", "generated_queries": {}}], 3, "docid", "first on line 1"),
    ],
)
def test_generated_errors(tmp_path: Path, lines, line, field, contains) -> None:
    path = put(tmp_path, "g.jsonl", jl(*lines))
    expect_error(lambda p: read_generated(p, known_docids={"d1", "d2"}), path, line, field, contains)


# ---------------------------------------------------------------- atomic writes and npy


def test_atomic_writes(tmp_path: Path) -> None:
    p = tmp_path / "a" / "b.txt"
    atomic_write_text(p, "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    atomic_write_json(tmp_path / "x.json", {"k": [1, "ü"]})
    assert json.loads((tmp_path / "x.json").read_text(encoding="utf-8")) == {"k": [1, "ü"]}
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"k": float("nan")})
    assert json.loads((tmp_path / "x.json").read_text(encoding="utf-8")) == {"k": [1, "ü"]}
    # New files get the usual permissions (not mkstemp's 0600); replaced files keep theirs.
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~atomic._UMASK
    os.chmod(p, 0o640)
    atomic_write_text(p, "again")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    assert sorted(x.name for x in tmp_path.rglob("*") if x.name.endswith(".tmp")) == []


def test_atomic_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "f.txt"
    p.write_text("previous")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(DiskFullError) as info:
        atomic_write_text(p, "new content")
    assert str(info.value).startswith(str(p))
    assert "\n" not in str(info.value)
    assert p.read_text() == "previous"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]  # temp file removed
    # Other OS errors are not disguised as a full disk.
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "io")))
    with pytest.raises(OSError) as info2:
        atomic_write_text(p, "x")
    assert not isinstance(info2.value, DiskFullError)


def test_npy_round_trip_and_mmap(tmp_path: Path) -> None:
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = tmp_path / "v.npy"
    save_npy_atomic(path, arr)
    assert np.array_equal(load_npy(path), arr)
    mm = load_npy(path, mmap=True)
    assert isinstance(mm, np.memmap) and np.array_equal(mm, arr)
    with pytest.raises(ValueError):
        mm[0, 0] = 1.0  # read-only mapping


def test_npy_refuses_pickles(tmp_path: Path) -> None:
    with pytest.raises(XQGError, match="objects"):
        save_npy_atomic(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    assert not (tmp_path / "o.npy").exists()
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([1, "x", None], dtype=object), allow_pickle=True)
    expect_error(load_npy, obj, None, contains="pickle")
    raw_pickle = put(tmp_path, "p.npy", b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.")
    expect_error(load_npy, raw_pickle, None, contains="not a .npy file")
    npz = tmp_path / "a.npz"
    np.savez(npz, a=np.zeros(2))
    expect_error(load_npy, npz, None, contains="not a .npy file")
    good = tmp_path / "g.npy"
    save_npy_atomic(good, np.zeros((100, 10), dtype=np.float32))
    trunc = put(tmp_path, "t.npy", good.read_bytes()[:300])
    expect_error(load_npy, trunc, None, contains="corrupt")
    expect_error(lambda p: load_npy(p, mmap=True), trunc, None, contains="corrupt")
    expect_error(load_npy, tmp_path / "missing.npy", None, contains="not found")


def test_npy_header_promising_huge_array_is_refused(tmp_path: Path) -> None:
    # Valid header for 10**12 float64s, 8 bytes of data: must not try to allocate 8 TB.
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    header += b" " * (117 - len(header)) + b"\n"
    path = put(tmp_path, "huge.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 8)
    for mmap in (False, True):
        expect_error(lambda p: load_npy(p, mmap=mmap), path, None, contains="truncated")
    bad = put(tmp_path, "bad.npy", b"\x93NUMPY\x01\x00\x0c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00[")
    expect_error(load_npy, bad, None, contains="corrupt .npy header")


def test_writers_refuse_ids_their_readers_would_refuse(tmp_path: Path) -> None:
    cases = [
        (write_corpus_jsonl, [Passage("a b", "", "x")]),
        (write_queries_jsonl, [Query("", "q", "ar")]),
        (write_generated_jsonl, {"d\t1": {"ar": ["q"]}}),
        (write_run, {"q": [("d\u00a01", 1.0)]}),  # no-break space splits a TREC line too
    ]
    for writer, data in cases:
        path = tmp_path / "out.txt"
        with pytest.raises(XQGError, match="whitespace") as info:
            writer(path, data)
        assert str(info.value).startswith(str(path))
        assert not path.exists()
