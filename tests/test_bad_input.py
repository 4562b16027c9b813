"""Bad input through the command line, and queries of any length and script.

test_io_properties.py (the readers' own properties) shows every reader either
loads a file or raises InputError naming the file and line. Here the same
kinds of damage go through ``xqg``: the command exits with status 2 and prints
exactly one line, the reader's own error (file:line: field: problem), never a
traceback. Plus the XQuAD JSON converter on arbitrary bytes, over-long lines
in every line reader, and any query text in ``Searcher.search`` and ``xqg search``.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from xqg_tui.errors import InputError, XQGError
from xqg_tui.io import _common, convert_xquad, read_corpus, read_generated, read_qrels, read_queries, read_run
from xqg_tui.io.corpus import write_corpus_jsonl

EXAMPLES = int(os.environ.get("XQG_HYPOTHESIS_EXAMPLES", "30"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SMALL_LINE_LIMIT = 2048  # the readers' line cap, lowered so "enormous" lines stay cheap


def _cli(argv: list[str]) -> tuple[int, str, str]:
    from xqg_tui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------- valid files, then damage

def _corpus_rows(n: int) -> list[str]:
    return [json.dumps({"docid": f"d{i}", "title": f"T{i}", "text": f"passage {i} about Tokyo"}) for i in range(n)]


def _query_rows(n: int) -> list[str]:
    return [json.dumps({"id": f"q{i}", "question": f"what is {i}?", "answers": ["Tokyo"], "lang": "ja"}) for i in range(n)]


def _qrels_rows(n: int) -> list[str]:
    return [f"q{i} 0 d{i} 1" for i in range(n)]


def _run_rows(n: int) -> list[str]:
    return [f"q{i % 2} Q0 d{i} {i // 2 + 1} {1.0 - i / 10:.2f} tag" for i in range(n)]


def _generated_rows(n: int) -> list[str]:
    return [json.dumps({"docid": f"d{i}", "generated_queries": {"ar": ["سؤال"], "ja": ["質問", "東京"]}}, ensure_ascii=False) for i in range(n)]


def _tsv_query_rows(n: int) -> list[str]:
    return ["id\ttext"] + [f"q{i}\twhat is {i}?" for i in range(n)]


# Damage done to one line (or the file): each is a realistic mistake.
DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "invalid utf-8": lambda line: line[: len(line) // 2] + b"\xff\xfe" + line[len(line) // 2:],
    "cut short": lambda line: line[: max(1, len(line) // 3)],
    "nul bytes": lambda line: line.replace(b"1", b"\x00", 1) if b"1" in line else line + b"\x00",
    "enormous": lambda line: line + b" " + b"x" * (SMALL_LINE_LIMIT + 10),
    "duplicate": lambda line: line + b"\n" + line,
    "wrong type": lambda line: line.replace(b'"T', b'["T', 1).replace(b'",', b'"],', 1) if b'"T' in line else line.replace(b'"', b"", 2),
    "number for string": lambda line: line.replace(b'"d', b"1", 1).replace(b'"q', b"2", 1),
    "missing field": lambda line: line.replace(b'"text"', b'"txet"').replace(b'"question"', b'"q"').replace(b'"generated_queries"', b'"gq"'),
    "empty value": lambda line: line.replace(b"passage", b"", 1).replace(b"what is", b"", 1),
    "empty text": lambda line: line.replace(b'"text": "', b'"text": "   ", "x": "', 1),
    "unknown language": lambda line: line.replace(b'"ja"', b'"xx"').replace(b'"ar"', b'"zz"'),
    "json array": lambda line: b"[" + line + b"]",
    "extra field": lambda line: line.replace(b" tag", b" tag extra").replace(b" 1", b" 1 1", 1),
    "crlf and bom": lambda line: b"\xef\xbb\xbf" + line + b"\r",
    "stray quote": lambda line: line.replace(b"\t", b'\t"', 1),
}


def _damaged(rows: list[str], draw: st.DrawFn) -> bytes:
    lines = [r.encode("utf-8") for r in rows]
    for _ in range(draw(st.integers(1, 2))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = DAMAGE[draw(st.sampled_from(sorted(DAMAGE)))](lines[i])
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from([b"", b"  ", b"\t"])))
    return b"\n".join(lines) + draw(st.sampled_from([b"\n", b""]))


@pytest.fixture(autouse=True)
def small_line_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "MAX_LINE_BYTES", SMALL_LINE_LIMIT)


def _valid_file(folder: Path, name: str, rows: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


# kind -> (file name, valid rows, reader, argv for xqg given (bad file, folder with valid files))
KINDS: dict[str, tuple[str, Callable[[int], list[str]], Callable[[Path], Any], Callable[[Path, Path], list[str]]]] = {
    "corpus": ("corpus.jsonl", _corpus_rows, read_corpus,
               lambda f, d: ["build", "--corpus", str(f), "--out", str(d / "ix"), "--encoder", str(d / "no-encoder"), "--quiet"]),
    "queries": ("queries.jsonl", _query_rows, read_queries,
                lambda f, d: ["retrieve", "--index", str(d / "no-index"), "--queries", str(f), "--out", str(d / "run"), "--quiet"]),
    "queries tsv": ("queries.tsv", _tsv_query_rows, lambda p: read_queries(p, lang="ja"),
                    lambda f, d: ["retrieve", "--index", str(d / "no-index"), "--queries", str(f), "--lang", "ja", "--out", str(d / "run"), "--quiet"]),
    "qrels": ("qrels.trec", _qrels_rows, read_qrels,
              lambda f, d: ["eval", "--run", str(d / "good.run"), "--queries", str(d / "good.jsonl"), "--qrels", str(f), "--json"]),
    "run": ("run.trec", _run_rows, read_run,
            lambda f, d: ["eval", "--run", str(f), "--queries", str(d / "good.jsonl"), "--json"]),
    "generated": ("generated.jsonl", _generated_rows, lambda p: read_generated(p, known_docids={f"d{i}" for i in range(8)}),
                  lambda f, d: ["build", "--corpus", str(d / "good-corpus.jsonl"), "--import-generated", str(f), "--out", str(d / "ix"),
                                "--encoder", str(d / "no-encoder"), "--quiet"]),
}


def _good_files(folder: Path) -> None:
    _valid_file(folder, "good.jsonl", _query_rows(4))
    _valid_file(folder, "good.run", _run_rows(4))
    _valid_file(folder, "good-corpus.jsonl", _corpus_rows(8))


@pytest.mark.parametrize("kind", sorted(KINDS))
@SETTINGS
@given(data=st.data())
def test_cli_bad_file_is_exit_2_and_the_readers_one_line(kind: str, data: st.DataObject) -> None:
    name, rows, reader, argv = KINDS[kind]
    content = _damaged(rows(data.draw(st.integers(1, 6))), data.draw)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _good_files(folder)
        path = folder / name
        path.write_bytes(content)
        try:
            reader(path)
            expected = None
        except InputError as err:
            expected = err
        code, out, err_text = _cli(argv(path, folder))
    event(f"{kind}: {'refused' if expected else 'loaded'}")
    assert "Traceback" not in err_text
    if expected is not None:
        assert code == 2 and out == "", (code, out)
        assert err_text == f"xqg: error: {expected.one_line()}\n", (err_text, expected.one_line())
        where = f"{path}:{expected.line}:" if expected.line is not None else f"{path}:"
        assert where in err_text
    else:
        # Loaded: the command gets further and fails (or not) on something else, in one line.
        assert code in (0, 2), code
        if code == 2:
            assert err_text.startswith("xqg: error: ") and err_text.count("\n") == 1, err_text


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_line_reader_refuses_an_enormous_line_by_number(kind: str, tmp_path: Path) -> None:
    name, rows, reader, argv = KINDS[kind]
    lines = rows(3)
    lines.insert(2, lines[1] + " " + "y" * (SMALL_LINE_LIMIT + 1))
    path = _valid_file(tmp_path, name, lines)
    with pytest.raises(InputError) as err:
        reader(path)
    assert err.value.line == 3 and "longer than" in err.value.problem
    _good_files(tmp_path)
    code, _, err_text = _cli(argv(path, tmp_path))
    assert code == 2 and f"{path}:3: line is longer than" in err_text and err_text.count("\n") == 1


def test_real_line_limit_through_a_real_process(tmp_path: Path) -> None:
    """No monkeypatching: an 11 MB line in a queries file, `xqg retrieve` in its own process."""
    path = tmp_path / "queries.jsonl"
    with open(path, "wb") as f:
        f.write(_query_rows(1)[0].encode() + b"\n")
        f.write(b'{"id": "q2", "question": "' + b"a" * (11 << 20) + b'"}\n')
    proc = subprocess.run([sys.executable, "-m", "xqg_tui", "retrieve", "--index", str(tmp_path / "none"), "--queries", str(path),
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and f"{path}:2: line is longer than 10 MB" in proc.stderr, proc.stderr


# ---------------------------------------------------------------- XQuAD JSON on arbitrary bytes

def _squad(lang: str) -> dict[str, Any]:
    return {"version": "1.1", "data": [{"title": "Tokyo", "paragraphs": [
        {"context": "Tokyo is the capital of Japan.",
         "qas": [{"id": "q1", "question": f"[{lang}] capital?", "answers": [{"text": "Tokyo", "answer_start": 0}]}]}]}]}


json_text = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                         max_leaves=8).map(lambda v: json.dumps(v).encode())
xquad_bytes = (
    st.binary(max_size=300)
    | json_text
    | st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n)  # nested deeper than the parser allows
    | st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe{}", json.dumps(_squad("ar")).encode()[:-7]])
    | st.tuples(st.just(json.dumps(_squad("ar"), ensure_ascii=False).encode()), st.integers(0, 200), st.binary(min_size=1, max_size=3))
      .map(lambda t: t[0][: t[1]] + t[2] + t[0][t[1]:])
)


@SETTINGS
@given(content=xquad_bytes, which=st.sampled_from(["en", "ar"]))
def test_xquad_convert_on_arbitrary_bytes(content: bytes, which: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {lang: folder / f"xquad.{lang}.json" for lang in ("en", "ar")}
        for lang, path in files.items():
            path.write_text(json.dumps(_squad(lang), ensure_ascii=False), encoding="utf-8")
        files[which].write_bytes(content)
        out = folder / "out"
        try:
            convert_xquad(files["en"], {"ar": files["ar"]}, out)
            expected = None
        except InputError as err:
            assert err.path == str(files[which]) or "question id" in err.problem, str(err)
            assert not out.exists() or not any(out.iterdir()), "nothing half-written"
            expected = err
        code, _, err_text = _cli(["convert", "xquad", "--en", str(files["en"]), "--lang-file", f"ar={files['ar']}", "--out", str(folder / "out2")])
    event("refused" if expected else "converted")
    if expected is None:
        assert code == 0
    else:
        assert code == 2 and err_text == f"xqg: error: {expected.one_line()}\n"


@pytest.mark.parametrize("lang", ["../../escape", "/abs", "a/b", "xx"])
def test_xquad_language_cannot_name_a_path(tmp_path: Path, lang: str) -> None:
    en = tmp_path / "en.json"
    en.write_text(json.dumps(_squad("en")), encoding="utf-8")
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_squad("xx")), encoding="utf-8")
    code, _, err = _cli(["convert", "xquad", "--en", str(en), "--lang-file", f"{lang}={other}", "--out", str(tmp_path / "out")])
    assert code == 2 and err.count("\n") == 1 and "unknown language code" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["en.json", "other.json"], "nothing written anywhere"


# ---------------------------------------------------------------- queries of any length and script

@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, tiny_corpus, tiny_encoder_dir: Path, tiny_generator_dir: Path) -> Path:
    from xqg_tui.index.builder import BuildConfig, build_index

    folder = tmp_path_factory.mktemp("bad-input")
    corpus = folder / "corpus.jsonl"
    write_corpus_jsonl(corpus, tiny_corpus[:12])
    build_index(BuildConfig(corpus=corpus, out=folder / "index", encoder=str(tiny_encoder_dir), generator=str(tiny_generator_dir),
                            langs=["ar", "ja"], queries_per_lang=2, chunk_size=6, max_new_tokens=6, seed=1))
    return folder / "index"


@pytest.fixture(scope="module")
def searcher(index_dir: Path):
    from xqg_tui.search import Searcher

    return Searcher.open(index_dir)


NASTY = {
    "10,000 characters": "東京" * 5000,
    "100,000 characters": "Tokyo capital " * 7200,
    "emoji": "🗼🇯🇵 👨‍👩‍👧‍👦 🙂?",
    "right to left": "ما هي عاصمة اليابان؟",
    "hebrew with marks": "\u202bמהי בירת יפן?\u202c",
    "mixed scripts": "Tokyo 東京 Токио طوكيو 도쿄 టోక్యో টোকিও",
    "nul inside": "Tokyo\x00capital",
    "controls": "\x01\x02Tokyo\x1b[31m red\x7f",
    "zero width only": "\u200b\u200d\ufeff",
    "combining marks": "e\u0301" * 300,
    "lone surrogate": "Tokyo \ud800 capital",
    "private use": "\ue000\U000f0000",
    "one character": "?",
    "newlines": "line one\nline two\r\n\tthree",
}


@pytest.mark.parametrize("name", sorted(NASTY))
def test_any_query_works_in_the_searcher(searcher, name: str) -> None:
    r = searcher.search(NASTY[name], k=3)
    assert len(r.hits) == 3 and len(r.plain) == 3
    assert all(h.docid.startswith("d") for h in r.hits)
    json.dumps(r.to_dict(), ensure_ascii=False).encode("utf-8")  # printable as UTF-8


@pytest.mark.parametrize("text", ["", "   ", "\x00", "\n\t\r ", "\x00 \x00"])
def test_empty_query_is_refused_politely(searcher, text: str) -> None:
    with pytest.raises(XQGError) as err:
        searcher.search(text)
    assert "empty" in err.value.one_line()


@SETTINGS
@given(text=st.text(max_size=200) | st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
       lang=st.none() | st.sampled_from(["ar", "ja", " JA", "xx", "ko-KR"]),
       k=st.integers(-3, 50))
def test_any_text_searches_or_is_refused_in_one_line(searcher, text: str, lang: str | None, k: int) -> None:
    try:
        r = searcher.search(text, lang=lang, k=k)
    except XQGError as err:
        assert "\n" not in err.one_line()
        if "k must be" in err.one_line():
            assert k < 1  # a k of 0 or less is a mistake, not one hit
        else:
            assert "empty" in err.one_line() and not text.replace("\x00", " ").strip()
        return
    assert k >= 1 and 1 <= len(r.hits) <= min(k, 12)
    assert [h.rank for h in r.hits] == list(range(1, len(r.hits) + 1))


@pytest.mark.parametrize("name", ["10,000 characters", "emoji", "right to left", "mixed scripts", "nul inside", "lone surrogate"])
def test_any_query_works_in_xqg_search(index_dir: Path, name: str) -> None:
    code, out, err = _cli(["search", "--index", str(index_dir), "--k", "2", "--json", NASTY[name]])
    assert code == 0, err
    assert len(json.loads(out)["hits"]) == 2
    code, out, err = _cli(["search", "--index", str(index_dir), "--k", "2", NASTY[name]])
    assert code == 0 and out.count("\n") >= 3, err


def test_empty_query_in_xqg_search_is_one_line(index_dir: Path) -> None:
    code, out, err = _cli(["search", "--index", str(index_dir), "  "])
    assert code == 2 and out == "" and err == "xqg: error: the query is empty: type a question first\n"


def test_invalid_utf8_argument_through_a_real_process(index_dir: Path) -> None:
    """Bytes that are not UTF-8 on the command line reach Python as lone surrogates."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", XQG_THREADS="1", PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable.encode(), b"-m", b"xqg_tui", b"search", b"--index", str(index_dir).encode(), b"--k", b"2",
                           b"--json", b"Tokyo \xff\xfe \xd8\xb7\xd9\x88\xd9\x83\xd9\x8a\xd9\x88"],
                          capture_output=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    result = json.loads(proc.stdout.decode("utf-8"))
    assert len(result["hits"]) == 2 and "\ufffd" in result["query"] and "طوكيو" in result["query"]


def test_unwritable_output_is_one_line(index_dir: Path, tmp_path: Path) -> None:
    queries = _valid_file(tmp_path, "queries.jsonl", _query_rows(2))
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    code, _, err = _cli(["retrieve", "--index", str(index_dir), "--queries", str(queries), "--out", str(blocker / "run.trec"), "--quiet"])
    assert code == 2 and err.startswith("xqg: error: ") and err.count("\n") == 1 and "a-file" in err, err
