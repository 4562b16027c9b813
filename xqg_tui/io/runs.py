"""TREC runs: ``qid Q0 docid rank score tag`` (whitespace separated, six fields)."""
from __future__ import annotations

import math
import re
from pathlib import Path

from ..errors import InputError, XQGError
from ..types import Run
from ._common import check_encodable, check_write_id, has_space, is_blank, iter_lines
from .atomic import atomic_open

# ASCII decimal numbers only: float() would also take "nan", "inf", "1_0" and "١".
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def read_run(path: str | Path) -> Run:
    """Read ``qid -> [(docid, score), ...]`` in rank order (ties: higher score first, then file order).

    A docid listed twice for one query is an InputError naming both lines.
    """
    path = Path(path)
    rows: dict[str, list[tuple[int, float, int, str]]] = {}
    lines: dict[tuple[str, str], int] = {}
    for lineno, text in iter_lines(path):
        if is_blank(text):
            continue
        fields = text.split()
        if len(fields) != 6:
            raise InputError(path, lineno, f"expected 6 whitespace-separated fields "
                             f"(qid Q0 docid rank score tag), found {len(fields)}")
        qid, _, docid, rank_text, score_text, _tag = fields
        if not _INT.fullmatch(rank_text):
            raise InputError(path, lineno, f"rank {rank_text!r} is not an integer", field="rank")
        if not _FLOAT.fullmatch(score_text):
            raise InputError(path, lineno, f"score {score_text!r} is not a finite number", field="score")
        score = float(score_text)
        if not math.isfinite(score):  # e.g. 1e999
            raise InputError(path, lineno, f"score {score_text!r} is not a finite number", field="score")
        check_encodable(path, lineno, "qid", qid)
        check_encodable(path, lineno, "docid", docid)
        first = lines.get((qid, docid))
        if first is not None:
            raise InputError(path, lineno, f"query {qid!r} lists docid {docid!r} twice "
                             f"(first on line {first})", field="docid")
        lines[(qid, docid)] = lineno
        rows.setdefault(qid, []).append((int(rank_text), -score, lineno, docid))
    run: Run = {}
    for qid, entries in rows.items():
        entries.sort()
        run[qid] = [(docid, -neg) for _, neg, _, docid in entries]
    return run


def write_run(path: str | Path, run: Run, tag: str = "xqg") -> int:
    """Write a run atomically with ranks 1..n in the given order; returns the number of lines.

    Scores are written with ``repr`` so that reading the file back gives the same floats.
    """
    if not tag or has_space(tag):
        raise XQGError(f"{path}: run tag {tag!r} must be one word")
    n = 0
    with atomic_open(path, "w") as fh:
        for qid, ranking in run.items():
            check_write_id(path, "query id", qid)
            seen: set[str] = set()
            for rank, (docid, score) in enumerate(ranking, start=1):
                check_write_id(path, "docid", docid)
                if docid in seen:
                    raise XQGError(f"{path}: query {qid!r} lists docid {docid!r} twice")
                seen.add(docid)
                value = float(score)
                if not math.isfinite(value):
                    raise XQGError(f"{path}: query {qid!r}, docid {docid!r} has score {value}")
                fh.write(f"{qid} Q0 {docid} {rank} {value!r} {tag}\n")
                n += 1
    return n
