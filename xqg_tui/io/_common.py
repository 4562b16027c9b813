"""Shared line reading and field validation for the readers in ``xqg_tui.io``.

Files are read in binary, one line at a time with a hard length cap, so a
multi-gigabyte file streams in constant memory and a file without newlines
(a binary blob, a minified JSON array) fails fast instead of filling memory.
Line numbers are physical (1-based, blank lines counted) so that they match
what an editor shows.
"""
from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from ..errors import InputError, XQGError
from ..languages import is_known, normalize_code

# Longest line (bytes, without the newline) a reader accepts.
MAX_LINE_BYTES = 10 * 1024 * 1024

# Whitespace that makes a line blank; anything else on the line is data.
_BLANK = " \t\r\n"

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson", ".jl")
TSV_SUFFIXES = (".tsv",)


def _size(n: int) -> str:
    return f"{n // 1048576} MB" if n >= 1048576 and n % 1048576 == 0 else f"{n} bytes"


def is_blank(line: str) -> bool:
    return not line.strip(_BLANK)


def base_suffix(path: Path) -> str:
    """Lower-case suffix, ignoring a trailing ``.gz``."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).suffix


def open_binary(path: Path) -> IO[bytes]:
    """Open for reading, transparently gunzipping ``*.gz``; OS errors become InputError."""
    try:
        if path.is_dir():
            raise InputError(path, None, "is a folder, not a file")
        if path.name.lower().endswith(".gz"):
            return gzip.open(path, "rb")
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    except PermissionError:
        raise InputError(path, None, "permission denied") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot open: {exc.strerror or exc}") from None


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for every line, blank ones included.

    The newline (``\\n`` or ``\\r\\n``) and a UTF-8 byte-order mark on line 1 are
    removed. Invalid UTF-8 and over-long lines raise InputError with the line.
    """
    for lineno, _, text in iter_lines_at(path):
        yield lineno, text


def iter_lines_at(path: Path, on_raw: Callable[[bytes], None] | None = None) -> Iterator[tuple[int, int, str]]:
    """Like :func:`iter_lines`, with each line's byte offset in the (decompressed)
    stream: ``(line_number, offset, text)``. ``on_raw`` sees every raw line as read
    (to hash or spool the bytes in the same pass)."""
    limit = MAX_LINE_BYTES
    fh = open_binary(path)
    with fh:
        lineno = 0
        offset = 0
        while True:
            lineno += 1
            try:
                raw = fh.readline(limit + 1)
            except (OSError, EOFError, zlib.error) as exc:
                # gzip.BadGzipFile is an OSError; a truncated .gz ends in EOFError.
                problem = "corrupt or truncated gzip data" if isinstance(
                    exc, (gzip.BadGzipFile, EOFError, zlib.error)) else f"read error: {exc}"
                raise InputError(path, lineno, problem) from None
            if not raw:
                return
            start = offset
            offset += len(raw)
            if on_raw is not None:
                on_raw(raw)
            yield lineno, start, decode_line(path, lineno, raw)


def decode_line(path: Path, lineno: int, raw: bytes) -> str:
    """One raw line (newline included or not) as text, with the checks of :func:`iter_lines`."""
    limit = MAX_LINE_BYTES
    body = raw[:-1] if raw.endswith(b"\n") else raw
    if len(body) > limit:
        raise InputError(path, lineno, f"line is longer than {_size(limit)}; refusing to read it",
                         hint="is this really a line-oriented (JSONL/TSV/TREC) file?")
    if body.endswith(b"\r"):
        body = body[:-1]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, lineno, f"invalid UTF-8 (byte {exc.start + 1} of the line)",
                         hint="save the file as UTF-8") from None
    if lineno == 1 and text.startswith("\ufeff"):
        text = text[1:]
    return text


def first_data_line(path: Path) -> tuple[int, str] | None:
    for lineno, text in iter_lines(path):
        if not is_blank(text):
            return lineno, text
    return None


def detect_format(path: Path, what: str) -> str:
    """``"jsonl"`` or ``"tsv"``: by extension, else by sniffing the first data line."""
    suffix = base_suffix(path)
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in TSV_SUFFIXES:
        return "tsv"
    first = first_data_line(path)
    if first is None:
        return "jsonl"  # empty file: both formats read it as "no rows"
    lineno, text = first
    if text.lstrip(_BLANK).startswith("{"):
        return "jsonl"
    if "\t" in text:
        return "tsv"
    raise InputError(path, lineno, f"cannot tell the {what} format (neither a JSON object nor "
                     "tab-separated)", hint="use a .jsonl or .tsv extension")


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


# One decoder for all lines: json.loads(..., object_pairs_hook=...) builds a new one per call.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys)


def parse_json_object(path: Path, lineno: int, text: str) -> dict[str, Any]:
    """Parse one JSONL line that must hold a JSON object (duplicate keys refused)."""
    try:
        obj = _DECODER.decode(text)
    except _DuplicateKey as dup:
        raise InputError(path, lineno, "the same key appears twice in this object",
                         field=dup.key) from None
    except RecursionError:
        raise InputError(path, lineno, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and int-too-long conversions
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        col = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        hint = ("expected one JSON object per line (JSON Lines), not a JSON array"
                if text.lstrip(_BLANK).startswith("[") else "")
        raise InputError(path, lineno, f"invalid JSON{col}: {msg}", hint=hint) from None
    if not isinstance(obj, dict):
        raise InputError(path, lineno, f"expected a JSON object, got {json_type(obj)}")
    return obj


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_encodable(path: Path, lineno: int | None, field: str, value: str) -> str:
    """Refuse strings with lone surrogates (``"\\ud800"`` is valid JSON but not text)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(path, lineno, "contains an invalid Unicode escape (lone surrogate)",
                             field=field) from None
    return value


def has_space(value: str) -> bool:
    # str.split() is how every TREC reader here splits; an id must survive it.
    return value.split() != [value]


def check_write_id(path: str | Path, what: str, value: object) -> None:
    """Writers refuse ids that their own readers would refuse (or that break TREC files)."""
    if not isinstance(value, str) or not value or has_space(value):
        raise XQGError(f"{path}: cannot write {what} {value!r}: ids must be non-empty strings "
                       "without whitespace")


def check_id(path: Path, lineno: int | None, field: str, value: str) -> str:
    if not value.strip():
        raise InputError(path, lineno, "is empty", field=field)
    if has_space(value):
        raise InputError(path, lineno, f"{value!r} contains whitespace", field=field,
                         hint="ids are written to whitespace-separated TREC files")
    return check_encodable(path, lineno, field, value)


def get_id(path: Path, lineno: int, obj: dict[str, Any], keys: tuple[str, ...]) -> str:
    """An id from the first present key: a string, or an integer turned into one."""
    for key in keys:
        if key in obj:
            value = obj[key]
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise InputError(path, lineno, f"expected a string or integer, got {json_type(value)}",
                                 field=key)
            return check_id(path, lineno, key, str(value))
    names = " or ".join(f"'{k}'" for k in keys)
    raise InputError(path, lineno, f"missing {names}", field=keys[0])


def get_text(path: Path, lineno: int, obj: dict[str, Any], key: str, required: bool = True,
             allow_empty: bool = False) -> str:
    """A string field; missing/null is an error when required, else ``""``."""
    if key not in obj or obj[key] is None:
        if required:
            raise InputError(path, lineno, "missing" if key not in obj else "is null", field=key)
        return ""
    value = obj[key]
    if not isinstance(value, str):
        raise InputError(path, lineno, f"expected a string, got {json_type(value)}", field=key)
    if not allow_empty and not value.strip():
        raise InputError(path, lineno, "is empty", field=key)
    return check_encodable(path, lineno, key, value)


def get_lang(path: Path, lineno: int | None, value: Any, field: str) -> str:
    """Normalise a language code and require it to be registered."""
    if not isinstance(value, str):
        raise InputError(path, lineno, f"expected a language code string, got {json_type(value)}",
                         field=field)
    code = normalize_code(value)
    if not code:
        raise InputError(path, lineno, "empty language code", field=field)
    if not is_known(code):
        raise InputError(path, lineno, f"unknown language code {code!r}", field=field,
                         hint=f"register it first: xqg_tui.languages.register_language({code!r}, NAME)")
    return code
