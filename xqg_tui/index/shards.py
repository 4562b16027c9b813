"""Sharding a corpus: a deterministic split by docid, the same on every machine."""
from __future__ import annotations

import hashlib
import re

from ..errors import XQGError

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def shard_of(docid: str, count: int) -> int:
    """The shard (0-based) that ``docid`` belongs to among ``count`` shards.

    A hash of the docid (not Python's ``hash``, which is salted per process), so
    every worker and every re-run agrees without any coordination."""
    if count <= 1:
        return 0
    digest = hashlib.blake2b(docid.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (0-based I) to ``(I, N)``, with a clear error for anything else."""
    m = _SHARD.fullmatch(text or "")
    if not m:
        raise XQGError(f"--shard must look like I/N (e.g. 0/4), not {text!r}")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise XQGError(f"--shard {text}: need 0 <= I < N and N >= 1")
    return i, n
