"""Crash-safe file writes and pickle-free ``.npy`` loading.

Every write goes to a temporary file in the destination folder, is flushed and
fsync'ed, then moved over the destination with :func:`os.replace` (atomic on
POSIX and Windows), so a reader never sees a half-written file and a crash
leaves the previous version intact. A full disk becomes :class:`DiskFullError`
with one line naming the file; the temporary file is removed first.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np
from numpy.lib import format as npy_format

from ..errors import DiskFullError, InputError, XQGError

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NPY_MAGIC = b"\x93NUMPY"

# mkstemp creates files as 0600; written files should get the usual
# permissions instead. The umask can only be read by setting it, so read it once.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def is_disk_full(exc: OSError) -> bool:
    """ENOSPC / EDQUOT, or numpy's short write (``ndarray.tofile`` raises a bare
    ``OSError("N requested and M written")`` without an errno when the disk fills)."""
    if exc.errno in _DISK_FULL:
        return True
    return exc.errno is None and re.fullmatch(r"\d+ requested and \d+ written", str(exc)) is not None


def fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every OS/filesystem.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _set_mode(fd: int, path: Path) -> None:
    if not hasattr(os, "fchmod"):
        return
    try:
        mode = os.stat(path).st_mode & 0o7777  # keep the replaced file's mode
    except OSError:
        mode = 0o666 & ~_UMASK
    with contextlib.suppress(OSError):
        os.fchmod(fd, mode)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on a clean exit it replaces ``path``.

    ``mode`` is ``"w"`` (UTF-8 text, ``\\n`` newlines) or ``"wb"``. Used by the
    streaming writers so that large outputs never need to sit in memory.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    tmp_name: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        if mode == "w":
            handle: IO[Any] = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        else:
            handle = os.fdopen(fd, "wb")
        _set_mode(handle.fileno(), path)
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        fsync_dir(path.parent)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(f"{path}: disk full while writing this file") from None
        raise
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON atomically (UTF-8, no NaN/Infinity: they are not JSON)."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False)
    atomic_write_text(path, text + "\n")


def save_npy_atomic(path: str | Path, array: np.ndarray) -> None:
    """Save ``array`` as ``.npy`` atomically; object arrays are refused (they need pickle)."""
    array = np.asarray(array)
    if array.dtype.hasobject:
        raise XQGError(f"{path}: cannot save an array of Python objects (dtype {array.dtype}); "
                       "only numeric arrays are stored")
    with atomic_open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def load_npy(path: str | Path, mmap: bool = False) -> np.ndarray:
    """Load a ``.npy`` file without ever unpickling; ``mmap=True`` maps it read-only.

    The header is checked first (object dtype, shape against the file size), so a
    corrupt or hostile file is an InputError rather than a huge allocation.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if fh.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
                # Catches pickles and .npz archives, which np.load would otherwise accept.
                raise InputError(path, None, "not a .npy file (wrong magic bytes)")
            fh.seek(0)
            shape, dtype, data_start = _read_npy_header(path, fh)
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a folder, not a .npy file") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if dtype.hasobject:
        raise InputError(path, None, "holds Python objects (a pickle); refusing to load it")
    expected = data_start + math.prod(shape) * dtype.itemsize
    if size < expected:
        raise InputError(path, None, f"corrupt or truncated .npy file: {size} bytes, the header "
                         f"promises {expected}")
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:
        raise InputError(path, None, f"corrupt .npy file: {exc}") from None
    except (EOFError, OSError) as exc:
        raise InputError(path, None, f"corrupt or truncated .npy file: {exc}") from None
    if not isinstance(array, np.ndarray) or array.dtype.hasobject:
        raise InputError(path, None, "holds Python objects (a pickle); refusing to load it")
    return array


def _read_npy_header(path: Path, fh: IO[bytes]) -> tuple[tuple[int, ...], np.dtype, int]:
    try:
        version = npy_format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(fh)
        else:
            raise InputError(path, None, f"unsupported .npy format version {version[0]}.{version[1]}")
    except InputError:
        raise
    except Exception as exc:  # numpy parses the header with ast/tokenize: many error types
        detail = " ".join(str(exc).split())[:120]
        raise InputError(path, None, f"corrupt .npy header: {detail or type(exc).__name__}") from None
    if any(n < 0 for n in shape):
        raise InputError(path, None, f"corrupt .npy header: negative shape {shape}")
    return tuple(shape), dtype, fh.tell()
