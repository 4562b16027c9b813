"""TREC qrels: ``qid iter docid rel`` (whitespace separated, exactly four fields)."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError, XQGError
from ..types import Qrels
from ._common import check_encodable, check_write_id, is_blank, iter_lines
from .atomic import atomic_open

# ASCII only: int() would also accept "١", "1_0" and " 1 ".
_INT = re.compile(r"[+-]?[0-9]+")


def read_qrels(path: str | Path) -> Qrels:
    """Read ``qid -> {docid: rel}``; a (qid, docid) judged twice is an InputError."""
    path = Path(path)
    qrels: Qrels = {}
    lines: dict[tuple[str, str], int] = {}
    for lineno, text in iter_lines(path):
        if is_blank(text):
            continue
        fields = text.split()
        if len(fields) != 4:
            raise InputError(path, lineno, f"expected 4 whitespace-separated fields "
                             f"(qid iter docid rel), found {len(fields)}")
        qid, _, docid, rel_text = fields
        if not _INT.fullmatch(rel_text):
            raise InputError(path, lineno, f"relevance {rel_text!r} is not an integer", field="rel")
        check_encodable(path, lineno, "qid", qid)
        check_encodable(path, lineno, "docid", docid)
        first = lines.get((qid, docid))
        if first is not None:
            raise InputError(path, lineno, f"query {qid!r} judges docid {docid!r} twice "
                             f"(first on line {first})", field="docid")
        lines[(qid, docid)] = lineno
        qrels.setdefault(qid, {})[docid] = int(rel_text)
    return qrels


def write_qrels(path: str | Path, qrels: Qrels) -> int:
    """Write ``qid 0 docid rel`` lines atomically; returns the number of lines."""
    n = 0
    with atomic_open(path, "w") as fh:
        for qid, judged in qrels.items():
            for docid, rel in judged.items():
                check_write_id(path, "query id", qid)
                check_write_id(path, "docid", docid)
                if isinstance(rel, bool) or not isinstance(rel, int):
                    raise XQGError(f"{path}: relevance of ({qid!r}, {docid!r}) must be an int, not {rel!r}")
                fh.write(f"{qid} 0 {docid} {rel}\n")
                n += 1
    return n
