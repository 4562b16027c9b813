"""Fixtures and helpers for the app tests (test_tui_*.py).

A tiny index (20 passages, ja/fi/ru, 3 generated queries each) is built once per
session from the shared tiny models in conftest.py. Test modules import the
fixtures from here; the build is memoised so importing into several modules
does not rebuild it.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from xqg_tui.types import Passage

INDEX_LANGS = ["ja", "fi", "ru"]
JA_QUERY = "日本の首都はどこですか"
FI_QUERY = "Mikä on Suomen pääkaupunki?"
BIG_ALPHA = 0.9  # tiny random models: a large alpha makes xQG visibly change the order

_BUILT: dict[str, Path] = {}


def build_tui_index(root: Path, encoder: Path, generator: Path, corpus: list[Passage]) -> Path:
    from xqg_tui.index.builder import BuildConfig, build_index
    from xqg_tui.io import write_corpus_jsonl

    if "index" in _BUILT and _BUILT["index"].exists():
        return _BUILT["index"]
    root.mkdir(parents=True, exist_ok=True)
    write_corpus_jsonl(root / "corpus.jsonl", corpus)
    out = root / "tiny-index"
    build_index(
        BuildConfig(
            corpus=root / "corpus.jsonl",
            out=out,
            encoder=str(encoder),
            generator=str(generator),
            langs=INDEX_LANGS,
            queries_per_lang=3,
            max_new_tokens=8,
            device="cpu",
        )
    )
    _BUILT["index"] = out
    return out


@pytest.fixture(scope="session")
def tui_index(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path, tiny_generator_dir: Path, tiny_corpus: list[Passage]) -> Path:
    return build_tui_index(tmp_path_factory.getbasetemp() / "tui-shared", tiny_encoder_dir, tiny_generator_dir, tiny_corpus)


@pytest.fixture(scope="session")
def tui_searcher(tui_index: Path):
    """A Searcher with its encoder loaded (shared: the app never mutates it)."""
    from xqg_tui.search import Searcher

    s = Searcher.open(tui_index)
    s.load_encoder("cpu")
    return s


@pytest.fixture()
def eval_files(tmp_path: Path) -> dict[str, Path]:
    """XOR-TyDi style queries (with answers, for R@kt) and TREC qrels for the tiny corpus."""
    rows = [
        ("q1", "日本の首都はどこですか", ["Tokyo"], "ja", "d02"),
        ("q2", "日本で一番高い山は", ["Mount Fuji"], "ja", "d09"),
        ("q3", "Mikä on Suomen pääkaupunki?", ["Helsinki"], "fi", "d01"),
        ("q4", "Mikä on Suomen suurin järvi?", ["Saimaa"], "fi", "d20"),
        ("q5", "Какая столица России?", ["Moscow"], "ru", "d04"),
        ("q6", "Кто написал Войну и мир?", ["Tolstoy"], "ru", "d12"),
    ]
    q = tmp_path / "queries.jsonl"
    q.write_text("".join(json.dumps({"id": i, "question": t, "answers": a, "lang": l}, ensure_ascii=False) + "\n" for i, t, a, l, _ in rows), encoding="utf-8")
    qrels = tmp_path / "qrels.trec"
    qrels.write_text("".join(f"{i} 0 {d} 1\n" for i, _, _, _, d in rows), encoding="utf-8")
    return {"queries": q, "qrels": qrels}


def plain_text(renderable: Any, width: int = 200) -> str:
    """What a widget's content reads as on screen (Text, Group, Table or str)."""
    from rich.console import Console

    if hasattr(renderable, "content"):
        renderable = renderable.content
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.export_text()


async def settle(pilot, app) -> None:
    """Wait for every worker and the messages they posted."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def until(pilot, condition, timeout: float = 15.0) -> None:
    """Let the app run until ``condition()`` holds (or ``timeout`` seconds pass: the
    caller's assert then says what is wrong). A fixed pause was too short on a
    loaded machine."""
    import time

    deadline = time.monotonic() + timeout
    await pilot.pause()
    while not condition() and time.monotonic() < deadline:
        await pilot.pause(0.05)


def run_async(fn):
    """Run an ``async def`` test with asyncio.run (no async pytest plugin needed);
    fixtures still work because the wrapper keeps the signature."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


# ---- a deterministic index for snapshots ------------------------------------------
# The tiny random BERT scores every passage almost the same (~262.4), so its order
# hangs on float noise and is no good for pictures. Snapshots use a character
# n-gram hashing "encoder" (exact, well-separated scores) and imported generated
# queries written by hand, so plain search (Japanese query vs English passages)
# finds little and xQG finds the right passages: a stable, readable screen.


class HashEncoder:
    """Character uni/bi-gram hashing into 64 dims, L2-normalised; a test double."""

    dim = 64
    normalize = True
    model_id = "hash-encoder-test"

    def __init__(self) -> None:
        self.calls = 0

    def _vec(self, text: str):
        import zlib

        import numpy as np

        v = np.zeros(self.dim, dtype=np.float32)
        t = " ".join(text.lower().split())
        grams = list(t) + [t[i : i + 2] for i in range(len(t) - 1)]
        for g in grams:
            if g.strip():
                v[zlib.crc32(g.encode("utf-8")) % self.dim] += 1.0
        n = float(np.linalg.norm(v))
        return v / n if n else v

    def encode_queries(self, texts):
        import numpy as np

        self.calls += 1
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_passages(self, passages):
        import numpy as np

        self.calls += 1
        return np.stack([self._vec(f"{p.title} {p.text}") for p in passages])

    def fingerprint(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "dim": self.dim, "pooling": "hash", "normalize": True, "query_prefix": ""}


_HAND_QUERIES: dict[str, dict[str, list[str]]] = {
    "d01": {"ja": ["フィンランドの首都はどこですか"], "fi": ["Mikä on Suomen pääkaupunki?", "Missä Helsinki sijaitsee?"], "ru": ["Какая столица Финляндии?"]},
    "d02": {"ja": ["日本の首都はどこですか", "東京の人口は"], "fi": ["Mikä on Japanin pääkaupunki?"], "ru": ["Какая столица Японии?"]},
    "d03": {"ja": ["韓国の首都はどこですか"], "fi": ["Mikä on Etelä-Korean pääkaupunki?"], "ru": ["Какая столица Южной Кореи?"]},
    "d04": {"ja": ["ロシアの首都は"], "fi": ["Mikä on Venäjän pääkaupunki?"], "ru": ["Какая столица России?", "Когда была основана Москва?"]},
    "d09": {"ja": ["日本で一番高い山は何ですか", "富士山はいつ噴火しましたか"], "fi": ["Mikä on Japanin korkein vuori?"], "ru": ["Какая самая высокая гора Японии?"]},
    "d12": {"ja": ["戦争と平和を書いたのは誰ですか"], "fi": ["Kuka kirjoitti Sodan ja rauhan?"], "ru": ["Кто написал Войну и мир?"]},
    "d18": {"ja": ["新幹線はいつ開業しましたか"], "fi": ["Milloin Shinkansen avattiin?"], "ru": ["Когда открыли Синкансэн?"]},
    "d20": {"ja": ["フィンランドで一番大きい湖は"], "fi": ["Mikä on Suomen suurin järvi?"], "ru": ["Какое самое большое озеро Финляндии?"]},
}


def hand_generated(corpus: list[Passage]) -> list[dict[str, Any]]:
    rows = []
    for p in corpus:
        name = p.title or "テルグ語"
        q = _HAND_QUERIES.get(p.docid) or {"ja": [f"{name}について教えて"], "fi": [f"Mikä on {name}?"], "ru": [f"Что такое {name}?"]}
        rows.append({"docid": p.docid, "generated_queries": q})
    return rows


@pytest.fixture(scope="session")
def snap_searcher(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: list[Passage]):
    """A Searcher on a deterministic index (hash encoder, hand-written generated queries)."""
    from xqg_tui.index.builder import BuildConfig, build_index
    from xqg_tui.io import write_corpus_jsonl
    from xqg_tui.search import Searcher

    if "snap" not in _BUILT:
        root = tmp_path_factory.getbasetemp() / "tui-snap"
        root.mkdir(parents=True, exist_ok=True)
        write_corpus_jsonl(root / "corpus.jsonl", tiny_corpus)
        gen = root / "generated.jsonl"
        gen.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in hand_generated(tiny_corpus)), encoding="utf-8")
        out = root / "demo-index"
        build_index(
            BuildConfig(corpus=root / "corpus.jsonl", out=out, encoder="hash-encoder-test", generator="none",
                        import_generated=gen, alpha=0.5, fusion="mean"),
            encoder=HashEncoder(),
        )
        _BUILT["snap"] = out
    return Searcher.open(_BUILT["snap"], encoder=HashEncoder())
