"""Sharding a corpus: a deterministic split by docid, the same on every machine."""
from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from ..errors import XQGError

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def shard_of(docid: str, count: int) -> int:
    """The shard (0-based) that ``docid`` belongs to among ``count`` shards.

    A hash of the docid (not Python's ``hash``, which is salted per process), so
    every worker and every re-run agrees without any coordination."""
    if count <= 1:
        return 0
    return docid_hash(docid) % count


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (0-based I) to ``(I, N)``, with a clear error for anything else."""
    m = _SHARD.fullmatch(text or "")
    if not m:
        raise XQGError(f"--shard must look like I/N (e.g. 0/4), not {text!r}")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise XQGError(f"--shard {text}: need 0 <= I < N and N >= 1")
    return i, n


def docid_hash(docid: str) -> int:
    """64-bit hash of a docid (the one :func:`shard_of` splits by)."""
    return int.from_bytes(hashlib.blake2b(docid.encode("utf-8"), digest_size=8).digest(), "big")


class DocidSet:
    """Membership of docids in a whole corpus at 8 bytes a docid (sorted 64-bit
    hashes): a shard build checks that imported rows of other shards' passages
    belong to the corpus without keeping every docid string in memory."""

    def __init__(self, hashes: "np.ndarray") -> None:
        import numpy as np

        self._h = np.sort(np.asarray(hashes, dtype=np.uint64))

    def __len__(self) -> int:
        return int(self._h.shape[0])

    def __contains__(self, docid: object) -> bool:
        import numpy as np

        if not isinstance(docid, str):
            return False
        h = np.uint64(docid_hash(docid))
        i = int(np.searchsorted(self._h, h))
        return i < self._h.shape[0] and self._h[i] == h
