"""XQuAD / SQuAD JSON -> corpus + per-language queries and qrels."""
from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xqg_tui.errors import DiskFullError, InputError
from xqg_tui.io import convert_xquad, read_corpus, read_qrels, read_queries, xquad
from xqg_tui.types import Passage, Query

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def squad(lang: str) -> dict[str, Any]:
    """Two articles, three paragraphs, five questions; question text tagged with the language."""
    def qa(qid: str, q: str, answers: list[str]) -> dict[str, Any]:
        return {"id": qid, "question": f"[{lang}] {q}",
                "answers": [{"text": a if lang == "en" else f"{a}-{lang}", "answer_start": 0} for a in answers]}

    return {"version": "1.1", "data": [
        {"title": "Super_Bowl_50", "paragraphs": [
            {"context": f"[{lang}] The Broncos won 24-10.", "qas": [qa("q1", "Who won?", ["Broncos", "Broncos"]),
                                                                   qa("q2", "Score?", ["24-10"])]},
            {"context": f"[{lang}] It was held in Santa Clara.", "qas": [qa("q3", "Where?", ["Santa Clara"])]},
        ]},
        {"title": "Warsaw", "paragraphs": [
            {"context": f"[{lang}] Warsaw is the capital of Poland.",
             "qas": [qa("q4", "Capital?", ["Warsaw"]), qa("q5", "Country?", ["Poland", "Republic of Poland"])]},
        ]},
    ]}


def put_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {lang: put_json(tmp_path / f"xquad.{lang}.json", squad(lang)) for lang in ("en", "ar", "de")}


def test_convert_small(tmp_path: Path, files: dict[str, Path]) -> None:
    out = tmp_path / "out"
    summary = convert_xquad(files["en"], {"ar": files["ar"], "DE": files["de"]}, out)
    assert summary["passages"] == 3 and summary["articles"] == 2
    assert summary["languages"]["ar"] == {"queries": 5, "qrels": 5, "queries_file": "queries.ar.jsonl",
                                          "qrels_file": "qrels.ar.trec"}
    assert sorted(p.name for p in out.iterdir()) == sorted(summary["files"]) == [
        "corpus.jsonl", "qrels.ar.trec", "qrels.de.trec", "queries.ar.jsonl", "queries.de.jsonl"]

    assert read_corpus(out / "corpus.jsonl") == [
        Passage("xquad-00-00", "Super Bowl 50", "[en] The Broncos won 24-10."),
        Passage("xquad-00-01", "Super Bowl 50", "[en] It was held in Santa Clara."),
        Passage("xquad-01-00", "Warsaw", "[en] Warsaw is the capital of Poland."),
    ]
    queries = read_queries(out / "queries.de.jsonl")
    # Question text in the language, answers in English (deduplicated, order kept).
    assert queries[0] == Query("q1", "[de] Who won?", "de", ("Broncos",))
    assert queries[4] == Query("q5", "[de] Country?", "de", ("Poland", "Republic of Poland"))
    assert read_qrels(out / "qrels.ar.trec") == {
        "q1": {"xquad-00-00": 1}, "q2": {"xquad-00-00": 1}, "q3": {"xquad-00-01": 1},
        "q4": {"xquad-01-00": 1}, "q5": {"xquad-01-00": 1}}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_convert_include_english(tmp_path: Path, files: dict[str, Path]) -> None:
    summary = convert_xquad(files["en"], {"ar": files["ar"]}, tmp_path / "o", include_english=True)
    assert set(summary["languages"]) == {"ar", "en"}
    assert read_queries(tmp_path / "o" / "queries.en.jsonl")[1] == Query("q2", "[en] Score?", "en", ("24-10",))


def _mutated(files: dict[str, Path], lang: str, change) -> Path:
    obj = json.loads(files[lang].read_text(encoding="utf-8"))
    change(obj)
    return put_json(files[lang], obj)


@pytest.mark.parametrize(
    "lang, change, field, contains",
    [
        ("ar", lambda o: o["data"][0]["paragraphs"][1]["qas"].append(o["data"][0]["paragraphs"][0]["qas"].pop(1)),
         "data[0].paragraphs[1].qas[1].id", "another paragraph"),
        ("ar", lambda o: o["data"][1]["paragraphs"][0]["qas"].pop(), None, "missing, e.g. 'q5'"),
        ("de", lambda o: o["data"][1]["paragraphs"][0]["qas"][0].update(id="zz"), "data[1].paragraphs[0].qas[0].id",
         "not in the English file"),
        ("ar", lambda o: o["data"][0]["paragraphs"][1].pop("context"), "data[0].paragraphs[1].context", "missing"),
        ("en", lambda o: o["data"][0]["paragraphs"][1]["qas"][0].update(question=" "),
         "data[0].paragraphs[1].qas[0].question", "empty"),
        ("en", lambda o: o["data"][1]["paragraphs"][0]["qas"][1].update(answers={"text": "x"}),
         "data[1].paragraphs[0].qas[1].answers", "array"),
        ("en", lambda o: o["data"][1]["paragraphs"][0]["qas"][1]["answers"][1].update(text=""),
         "data[1].paragraphs[0].qas[1].answers[1].text", "empty"),
        ("en", lambda o: o["data"][1]["paragraphs"][0]["qas"][1].update(id="q1"),
         "data[1].paragraphs[0].qas[1].id", "also appears at data[0].paragraphs[0].qas[0]"),
        ("ar", lambda o: o["data"][1].update(paragraphs="x"), "data[1].paragraphs", "array"),
        ("ar", lambda o: o.pop("data"), "data", "missing"),
        ("en", lambda o: o["data"].append(7), "data[2]", "object"),
    ],
)
def test_convert_structure_errors(tmp_path: Path, files: dict[str, Path], lang, change, field, contains) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    bad = _mutated(files, lang, change)
    with pytest.raises(InputError) as info:
        convert_xquad(files["en"], {"ar": files["ar"], "de": files["de"]}, out)
    err = info.value
    assert err.path == str(bad) and str(err).startswith(f"{bad}:")
    assert err.field == field, str(err)
    assert contains in str(err)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]  # nothing written


def test_convert_invalid_json_names_line(tmp_path: Path, files: dict[str, Path]) -> None:
    text = files["ar"].read_text(encoding="utf-8").splitlines()
    text[6] = text[6] + ","  # trailing garbage on line 7
    files["ar"].write_text("\n".join(text), encoding="utf-8")
    with pytest.raises(InputError) as info:
        convert_xquad(files["en"], {"ar": files["ar"]}, tmp_path / "out")
    assert info.value.line in (7, 8) and "invalid JSON" in str(info.value)
    files["de"].write_bytes(b'{"data": [\n\n"\xff"]}')
    with pytest.raises(InputError) as info:
        convert_xquad(files["en"], {"de": files["de"]}, tmp_path / "out")
    assert info.value.line == 3 and "UTF-8" in str(info.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_convert_unknown_language_and_missing_file(tmp_path: Path, files: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="unknown language code 'xx'") as info:
        convert_xquad(files["en"], {"xx": files["ar"]}, tmp_path / "out")
    assert "register_language" in info.value.hint
    with pytest.raises(InputError, match="file not found"):
        convert_xquad(files["en"], {"ar": tmp_path / "nope.json"}, tmp_path / "out")


def test_convert_disk_full_leaves_nothing(tmp_path: Path, files: dict[str, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    convert_xquad(files["en"], {"ar": files["ar"]}, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full(path: Path, qrels: Any) -> int:
        raise DiskFullError(f"{path}: disk full while writing this file")

    monkeypatch.setattr(xquad, "write_qrels", full)
    with pytest.raises(DiskFullError):
        convert_xquad(files["en"], {"ar": files["de"]}, out)
    # The earlier, complete conversion is untouched and no temp folder is left.
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.realdata
def test_convert_real_xquad(tmp_path: Path) -> None:
    folder = DATA / "xquad"
    if not (folder / "xquad.en.json").exists():
        pytest.skip(f"real XQuAD data not found in {folder}")
    out = tmp_path / "xq"
    summary = convert_xquad(folder / "xquad.en.json", {"ar": folder / "xquad.ar.json",
                                                       "ru": folder / "xquad.ru.json"}, out)
    assert summary["passages"] == 240 and summary["articles"] == 48
    passages = {p.docid: p for p in read_corpus(out / "corpus.jsonl")}
    assert len(passages) == 240
    en_ids = None
    for lang in ("ar", "ru"):
        assert summary["languages"][lang]["queries"] == 1190
        queries = read_queries(out / f"queries.{lang}.jsonl")
        qrels = read_qrels(out / f"qrels.{lang}.trec")
        assert len(queries) == 1190 and {q.lang for q in queries} == {lang}
        ids = [q.qid for q in queries]
        en_ids = en_ids or ids
        assert ids == en_ids  # same questions, same order in every language
        assert set(qrels) == set(ids)  # qrels complete
        for q in queries:
            (docid, rel), = qrels[q.qid].items()
            assert rel == 1 and docid in passages
            # English answers are spans of the relevant English paragraph.
            assert q.answers and all(a in passages[docid].text for a in q.answers)
        cyrillic = sum(any("\u0400" <= ch <= "\u04ff" for ch in q.text) for q in queries)
        assert cyrillic > 1100 if lang == "ru" else cyrillic == 0  # the right file went to each language


# ------------------------------------------------------------- property: random structural mutations

json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                          lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner,
                                                                                       max_size=2), max_leaves=4)


@settings(max_examples=int(os.environ.get("XQG_HYPOTHESIS_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_convert_random_mutation(data: st.DataObject) -> None:
    """Replace or delete one node anywhere in the language file: converts, or InputError on that file."""
    obj = squad("ar")
    nodes: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, child in list(items):
            nodes.append((node, key))
            walk(child)

    walk(obj)
    parent, key = data.draw(st.sampled_from(nodes))
    mutated = copy.deepcopy(obj)
    # Re-find the same node in the copy by walking the same path.
    path_keys: list[Any] = []

    def find(node: Any, trail: list[Any]) -> bool:
        if node is parent:
            path_keys.extend(trail)
            return True
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        return any(find(child, trail + [k]) for k, child in items)

    assert find(obj, [])
    target = mutated
    for k in path_keys:
        target = target[k]
    if data.draw(st.booleans()):
        del target[key]
    else:
        target[key] = data.draw(json_value)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        en = put_json(tmp_path / "en.json", squad("en"))
        ar = put_json(tmp_path / "ar.json", mutated)
        out = tmp_path / "out"
        try:
            summary = convert_xquad(en, {"ar": ar}, out)
        except InputError as err:
            assert err.path == str(ar) and str(err).startswith(f"{ar}:")
            assert not out.exists() or not list(out.iterdir())
            return
        # Loaded: every question of the language file became a query.
        n = sum(len(p["qas"]) for a in mutated["data"] for p in a["paragraphs"])
        assert summary["languages"]["ar"]["queries"] == n == 5
