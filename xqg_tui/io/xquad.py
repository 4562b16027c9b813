"""Turn XQuAD / SQuAD JSON files into a cross-lingual retrieval test collection.

The English paragraphs become the passage corpus; each language's questions
become queries whose relevant passage is the question's own paragraph. Answers
are the *English* answer strings of the same question id, because retrieval
targets English passages and XOR-style answer recall (R@kt) looks for the
answer inside the retrieved English text.
"""
from __future__ import annotations

import contextlib
import filecmp
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DiskFullError, InputError, XQGError
from ..languages import is_known, normalize_code
from ..types import Passage, Query
from ._common import _DuplicateKey, _no_duplicate_keys, has_space, json_type
from .atomic import fsync_dir, is_disk_full
from .corpus import write_corpus_jsonl
from .qrels import write_qrels
from .queries import write_queries_jsonl


@dataclass(frozen=True)
class _QA:
    qid: str
    question: str
    answers: tuple[str, ...]
    article: int
    paragraph: int
    where: str  # JSON path of the question, for error messages


@dataclass(frozen=True)
class _Squad:
    paragraphs: list[tuple[int, int, str, str]]  # (article, paragraph, title, context)
    qas: list[_QA]


def xquad_docid(article: int, paragraph: int) -> str:
    """Stable passage id of paragraph ``paragraph`` of article ``article`` (0-based)."""
    return f"xquad-{article:02d}-{paragraph:02d}"


def convert_xquad(en_path: str | Path, lang_files: dict[str, Path], out_dir: str | Path,
                  include_english: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Write ``corpus.jsonl``, ``queries.LANG.jsonl`` and ``qrels.LANG.trec`` into ``out_dir``.

    All inputs are read and cross-checked (same question ids in the same
    paragraphs as the English file) before anything is written; the outputs
    are written into a temporary folder inside ``out_dir`` and only then moved
    in, so a failure leaves no half-written collection. ``include_english``
    also writes ``queries.en.jsonl`` from the English questions. A file of the
    same name already in ``out_dir`` with other content is never replaced unless
    ``overwrite`` (running the same conversion again is fine).

    Returns a summary: ``{"out_dir", "articles", "passages", "files",
    "languages": {lang: {"queries", "qrels", "queries_file", "qrels_file"}}}``.
    """
    en_path = Path(en_path)
    out_dir = Path(out_dir)
    langs: dict[str, Path] = {}
    for code_in, lang_path in lang_files.items():
        code = normalize_code(code_in)
        if not code or not is_known(code):
            raise InputError(lang_path, None, f"unknown language code {code_in!r}",
                             hint=f"register it first: xqg_tui.languages.register_language({code!r}, NAME)")
        if code in langs:
            raise XQGError(f"language {code!r} is given twice ({langs[code]} and {lang_path})")
        langs[code] = Path(lang_path)
    if include_english and "en" not in langs:
        langs["en"] = en_path

    english = _load_squad(en_path)
    passages = [Passage(xquad_docid(a, p), title.replace("_", " ").strip(), context)
                for a, p, title, context in english.paragraphs]
    en_by_id = {qa.qid: qa for qa in english.qas}

    outputs: dict[str, tuple[list[Query], dict[str, dict[str, int]]]] = {}
    for code, lang_path in langs.items():
        squad = english if lang_path == en_path else _load_squad(lang_path)
        _check_aligned(lang_path, squad, en_by_id)
        queries: list[Query] = []
        qrels: dict[str, dict[str, int]] = {}
        for qa in squad.qas:
            en_qa = en_by_id[qa.qid]
            queries.append(Query(qid=qa.qid, text=qa.question, lang=code, answers=en_qa.answers))
            qrels[qa.qid] = {xquad_docid(en_qa.article, en_qa.paragraph): 1}
        outputs[code] = (queries, qrels)

    files = ["corpus.jsonl"]
    for code in outputs:
        files += [f"queries.{code}.jsonl", f"qrels.{code}.trec"]
    _write_all(out_dir, passages, outputs, overwrite)
    return {
        "out_dir": str(out_dir),
        "articles": len({a for a, _, _, _ in english.paragraphs}),
        "passages": len(passages),
        "files": files,
        "languages": {
            code: {"queries": len(q), "qrels": sum(len(v) for v in r.values()),
                   "queries_file": f"queries.{code}.jsonl", "qrels_file": f"qrels.{code}.trec"}
            for code, (q, r) in outputs.items()
        },
    }


def _write_all(out_dir: Path, passages: list[Passage],
               outputs: dict[str, tuple[list[Query], dict[str, dict[str, int]]]], overwrite: bool) -> None:
    tmp: Path | None = None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=".xquad-tmp-"))
        write_corpus_jsonl(tmp / "corpus.jsonl", passages)
        for code, (queries, qrels) in outputs.items():
            write_queries_jsonl(tmp / f"queries.{code}.jsonl", queries)
            write_qrels(tmp / f"qrels.{code}.trec", qrels)
        if not overwrite:
            _refuse_changed(out_dir, sorted(tmp.iterdir()))
        # Everything is on disk; moving within one folder tree cannot run out of space.
        for item in sorted(tmp.iterdir()):
            os.replace(item, out_dir / item.name)
        fsync_dir(out_dir)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(f"{out_dir}: disk full while writing the converted files") from None
        raise XQGError(f"{out_dir}: cannot write the converted files: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp)


def _refuse_changed(out_dir: Path, new_files: list[Path]) -> None:
    """Never replace a user's file: an existing one must already hold exactly this content."""
    for item in new_files:
        old = out_dir / item.name
        if old.is_symlink() or old.is_dir() or (old.exists() and not filecmp.cmp(old, item, shallow=False)):
            raise XQGError(f"{old}: already exists with other content; nothing was written",
                           "choose another --out folder, or pass --overwrite to replace it")


def _check_aligned(path: Path, squad: _Squad, en_by_id: dict[str, _QA]) -> None:
    ids = set()
    for qa in squad.qas:
        ids.add(qa.qid)
        en_qa = en_by_id.get(qa.qid)
        if en_qa is None:
            raise InputError(path, None, f"question id {qa.qid!r} is not in the English file",
                             field=f"{qa.where}.id")
        if (en_qa.article, en_qa.paragraph) != (qa.article, qa.paragraph):
            raise InputError(path, None, f"question id {qa.qid!r} sits in another paragraph than in the "
                             f"English file (data[{en_qa.article}].paragraphs[{en_qa.paragraph}])",
                             field=f"{qa.where}.id")
    missing = [qid for qid in en_by_id if qid not in ids]
    if missing:
        raise InputError(path, None, f"{len(missing)} question id(s) of the English file are missing, "
                         f"e.g. {missing[0]!r}", hint="the files must be translations of the same questions")


def _load_squad(path: Path) -> _Squad:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a folder, not a file") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(path, line, "invalid UTF-8", hint="save the file as UTF-8") from None
    try:
        root = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as dup:
        raise InputError(path, None, "the same key appears twice in one object", field=dup.key) from None
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"invalid JSON at column {exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(path, None, f"invalid JSON: {exc}") from None
    return _validate(path, root)


def _expect(path: Path, where: str, value: Any, kind: type, what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InputError(path, None, f"expected {what}, got {json_type(value)}", field=where)
    return value


def _nonempty_str(path: Path, where: str, obj: dict[str, Any], key: str) -> str:
    if key not in obj:
        raise InputError(path, None, "missing", field=where)
    value = obj[key]
    _expect(path, where, value, str, "a string")
    if not value.strip():
        raise InputError(path, None, "is empty", field=where)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(path, None, "contains an invalid Unicode escape (lone surrogate)", field=where) from None
    return value


def _validate(path: Path, root: Any) -> _Squad:
    _expect(path, "(top level)", root, dict, "an object with a 'data' array")
    if "data" not in root:
        raise InputError(path, None, "missing", field="data", hint="expected SQuAD JSON: {\"data\": [...]}")
    articles = _expect(path, "data", root["data"], list, "an array")
    paragraphs: list[tuple[int, int, str, str]] = []
    qas: list[_QA] = []
    seen: dict[str, str] = {}
    for a, article in enumerate(articles):
        at = f"data[{a}]"
        _expect(path, at, article, dict, "an object")
        title = article.get("title", "")
        title = "" if title is None else _expect(path, f"{at}.title", title, str, "a string")
        if "paragraphs" not in article:
            raise InputError(path, None, "missing", field=f"{at}.paragraphs")
        for p, para in enumerate(_expect(path, f"{at}.paragraphs", article["paragraphs"], list, "an array")):
            pt = f"{at}.paragraphs[{p}]"
            _expect(path, pt, para, dict, "an object")
            context = _nonempty_str(path, f"{pt}.context", para, "context")
            paragraphs.append((a, p, title, context))
            if "qas" not in para:
                raise InputError(path, None, "missing", field=f"{pt}.qas")
            for q, qa in enumerate(_expect(path, f"{pt}.qas", para["qas"], list, "an array")):
                qt = f"{pt}.qas[{q}]"
                _expect(path, qt, qa, dict, "an object")
                qid_value = qa.get("id")
                if isinstance(qid_value, bool) or not isinstance(qid_value, (str, int)):
                    raise InputError(path, None, f"expected a string id, got {json_type(qid_value)}",
                                     field=f"{qt}.id")
                qid = str(qid_value)
                if not qid or has_space(qid):
                    raise InputError(path, None, f"id {qid!r} is empty or contains whitespace",
                                     field=f"{qt}.id")
                if qid in seen:
                    raise InputError(path, None, f"question id {qid!r} also appears at {seen[qid]}",
                                     field=f"{qt}.id")
                seen[qid] = qt
                question = _nonempty_str(path, f"{qt}.question", qa, "question")
                answers: list[str] = []
                for i, ans in enumerate(_expect(path, f"{qt}.answers", qa.get("answers", []), list,
                                                "an array")):
                    _expect(path, f"{qt}.answers[{i}]", ans, dict, "an object")
                    # An empty answer would match every passage in answer recall.
                    answer = _nonempty_str(path, f"{qt}.answers[{i}].text", ans, "text")
                    if answer not in answers:
                        answers.append(answer)
                qas.append(_QA(qid, question, tuple(answers), a, p, qt))
    return _Squad(paragraphs, qas)
