"""Generated queries: ``{"docid": ..., "generated_queries": {lang: [query, ...]}}`` per line.

This is the layout of ielab's released ``xor-tydi-xqg-augmented`` shards
(several GB each), hence the streaming :func:`iter_generated` and the two-pass
:func:`scan_generated` + :meth:`GeneratedScan.read_rows` that the index builder
uses: a first pass validates every row and records where each docid's line
starts, then rows are read back by seeking, a chunk at a time and in index
order, whatever the order of the file. Memory stays proportional to the corpus
(a few numbers per passage), never to the file. Passages may have a different
number of queries per language, or none.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import AbstractSet, Container, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..languages import normalize_code
from ..types import GeneratedQueries
from ._common import check_encodable, check_write_id, get_id, get_lang, is_blank, iter_lines, \
    iter_lines_at, json_type, parse_json_object
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


@dataclass
class GeneratedScan:
    """Where each corpus row's line is in a generated-queries file (first pass).

    ``offsets[row]`` is the byte offset of the row's line in ``read_path`` (-1: the
    file has no line for it), ``lines[row]`` its line number in ``path`` (messages
    name the original file). ``counts[lang][row]``: queries of that row in ``lang``.
    """

    path: Path
    read_path: Path  # the file itself, or a decompressed copy of a .gz (seekable)
    docids: Sequence[str]  # docid of each row, to check the line read back
    offsets: np.ndarray
    lines: np.ndarray
    sizes: np.ndarray  # bytes of each row's line: read back with one pread, no buffer refills
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    sha256: str = ""
    rows_read: int = 0  # data lines in the file (other shards' included)

    @property
    def langs(self) -> list[str]:
        return sorted(self.counts)

    def chunk(self, start: int, stop: int) -> dict:
        """A JSON-able description of rows ``start:stop`` that :meth:`from_chunk` reads
        back in another process (a Ray worker) without the whole scan."""
        return {
            "path": str(self.path),
            "read_path": str(self.read_path),
            "docids": list(self.docids[start:stop]),
            "offsets": self.offsets[start:stop].tolist(),
            "lines": self.lines[start:stop].tolist(),
            "sizes": self.sizes[start:stop].tolist(),
        }

    @classmethod
    def from_chunk(cls, desc: dict) -> "GeneratedScan":
        return cls(Path(desc["path"]), Path(desc["read_path"]), list(desc["docids"]),
                   np.asarray(desc["offsets"], dtype=np.int64), np.asarray(desc["lines"], dtype=np.int64),
                   np.asarray(desc["sizes"], dtype=np.int64))

    def read_rows(self, rows: Sequence[int]) -> list[dict[str, list[str]]]:
        """The queries of ``rows`` (index rows), in that order: ``{}`` where the file has none.

        Lines are read in file order (one seek each), so a chunk costs its own lines only."""
        out: list[dict[str, list[str]]] = [{} for _ in rows]
        wanted = sorted((int(self.offsets[r]), k, r) for k, r in enumerate(rows) if self.offsets[r] >= 0)
        if not wanted:
            return out
        with open(self.read_path, "rb", buffering=0) as fh:
            fd = fh.fileno()
            for offset, k, r in wanted:
                lineno = int(self.lines[r])
                out[k] = self._reread(lineno, os.pread(fd, int(self.sizes[r]), offset), self.docids[r])
        return out


    def _reread(self, lineno: int, raw: bytes, docid: str) -> dict[str, list[str]]:
        """A line the scan validated: parsed plainly (3x faster), checked to be the same row."""
        try:
            obj = json.loads(raw)
            same = str(next(obj[k] for k in _ID_KEYS if k in obj)) == docid
            queries = {normalize_code(lang): list(qs) for lang, qs in obj[_FIELD].items()}
        except (ValueError, KeyError, TypeError, AttributeError, StopIteration):
            same = False
        if not same:
            raise InputError(self.path, lineno, "the file changed while the index was being built",
                             hint="run the build again")
        return queries


def scan_generated(path: str | Path, row_of: Mapping[str, int], known_docids: Container[str] | None = None,
                   spool: str | Path | None = None) -> GeneratedScan:
    """First pass over a generated-queries file: validate every line, record per row
    where its line starts and how many queries it has per language; hash the file.

    ``row_of`` maps the docids being indexed to their rows. A docid outside it is an
    InputError unless ``known_docids`` has it (a passage of another shard: skipped).
    A ``.gz`` file is decompressed to ``spool`` on the way (seeking in gzip is slow).
    Repeated docids are InputErrors naming both lines.
    """
    path = Path(path)
    n = len(row_of)
    docids: list[str] = [""] * n
    for d, r in row_of.items():
        docids[r] = d
    offsets = np.full(n, -1, dtype=np.int64)
    lines = np.zeros(n, dtype=np.int64)
    sizes = np.zeros(n, dtype=np.int64)
    counts: dict[str, np.ndarray] = {}
    langs: set[str] = set()  # of every row, other shards' too: all shards agree on the languages
    is_gz = path.name.lower().endswith(".gz")
    digest = hashlib.sha256()
    spool_fh = None
    if is_gz:
        if spool is None:
            raise ValueError("a .gz file needs a spool path")
        Path(spool).parent.mkdir(parents=True, exist_ok=True)
        spool_fh = open(spool, "wb")
    last = [0]

    def on_raw(raw: bytes) -> None:
        last[0] = len(raw)
        if spool_fh is not None:
            spool_fh.write(raw)
        else:
            digest.update(raw)

    rows_read = 0
    try:
        for lineno, offset, text in iter_lines_at(path, on_raw):
            size = last[0]
            if is_blank(text):
                continue
            obj = parse_json_object(path, lineno, text)
            docid = get_id(path, lineno, obj, _ID_KEYS)
            row = row_of.get(docid)
            if row is None and (known_docids is None or docid not in known_docids):
                raise InputError(path, lineno, f"docid {docid!r} is not in the corpus", field="docid",
                                 hint="generated queries must belong to passages of the corpus")
            if row is not None and offsets[row] >= 0:
                raise InputError(path, lineno, f"duplicate docid {docid!r} (first on line {int(lines[row])})",
                                 field="docid")
            queries = _parse_queries(path, lineno, obj)
            langs.update(queries)
            rows_read += 1
            if row is None:  # another shard's passage: that shard's build reads it
                continue
            offsets[row] = offset
            lines[row] = lineno
            sizes[row] = size
            for lang, qs in queries.items():
                if lang not in counts:
                    counts[lang] = np.zeros(n, dtype=np.int32)
                counts[lang][row] = len(qs)
    finally:
        if spool_fh is not None:
            spool_fh.close()
    for lang in langs - set(counts):
        counts[lang] = np.zeros(n, dtype=np.int32)
    sha = _sha256_file(path) if is_gz else digest.hexdigest()
    return GeneratedScan(path, Path(spool) if is_gz else path, docids, offsets, lines, sizes, counts, sha, rows_read)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
