"""Faults other than SIGKILL (see test_reliability_kill.py): a full disk, damaged or
mismatched indexes, and two processes on one index folder."""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from xqg_tui.errors import BuildLockedError, DiskFullError, IndexError_
from xqg_tui.index import builder as builder_mod
from xqg_tui.index import store
from xqg_tui.index.builder import BuildConfig, build_index
from xqg_tui.index.store import open_index
from xqg_tui.io import atomic
from xqg_tui.io.corpus import write_corpus_jsonl
from xqg_tui.search import Searcher

WORKER = Path(__file__).with_name("_build_worker.py")
CHUNK_FILE_DIRS = ("encode-", "generate-", "encode-queries-")


# ---------------------------------------------------------------- helpers and fixtures

class Counting:
    """Counts a model's calls (the builder only calls these three methods)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.n = 0

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name in ("encode_passages", "encode_queries", "generate"):
            def counted(*a: Any, **k: Any) -> Any:
                self.n += 1
                return value(*a, **k)

            return counted
        return value


class Forbidden:
    """A model that must not be used: any attribute access fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"model used: {name}")


def _config(corpus: Path, out: Path, enc: Path, gen: Path | None, **kw: Any) -> BuildConfig:
    base: dict[str, Any] = dict(corpus=corpus, out=out, encoder=str(enc), generator=str(gen) if gen else "none",
                                langs=["ar", "ja"], queries_per_lang=2, chunk_size=4, max_new_tokens=6, seed=7)
    base.update(kw)
    return BuildConfig(**base)


def _digests(root: Path) -> dict[str, str]:
    """sha256 of every index file, by its name inside the data folder."""
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    return {rel.split("/", 1)[1]: rec["sha256"] for rel, rec in manifest["files"].items()}


def _cli(argv: list[str]) -> tuple[int, str, str]:
    from xqg_tui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _one_error_line(err: str) -> str:
    assert err.startswith("xqg: error: ") and err.count("\n") == 1 and err.endswith("\n"), repr(err)
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory, tiny_corpus) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    write_corpus_jsonl(path, tiny_corpus[:12])
    return path


@pytest.fixture(scope="module")
def models(tiny_encoder_dir: Path, tiny_generator_dir: Path) -> tuple[Any, Any]:
    from xqg_tui.models.encoder import Encoder
    from xqg_tui.models.generator import QueryGenerator

    return Encoder.load(str(tiny_encoder_dir)), QueryGenerator.load(str(tiny_generator_dir), max_new_tokens=6)


class DiskFull:
    """Stands in for ``os`` and ``tempfile`` inside ``xqg_tui.io.atomic``: records
    every file written atomically, and the ``fail_at``-th one (0-based) hits ENOSPC
    half-way through its first write, as a real full disk would."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.targets: list[Path] = []
        self.failed: Path | None = None

    def mkstemp(self, dir: Any = None, prefix: str = "", suffix: str = "", **kw: Any) -> tuple[int, str]:
        import tempfile

        self.targets.append(Path(dir) / prefix[1:-1])  # atomic_open's prefix is ".NAME."
        return tempfile.mkstemp(dir=dir, prefix=prefix, suffix=suffix, **kw)

    def fdopen(self, fd: int, *a: Any, **k: Any) -> Any:
        handle = os.fdopen(fd, *a, **k)
        if self.fail_at is not None and len(self.targets) - 1 == self.fail_at:
            self.failed = self.targets[-1]
            return _FullHandle(handle)
        return handle

    def __getattr__(self, name: str) -> Any:  # everything else: the real os / tempfile
        return getattr(os, name)

    @contextlib.contextmanager
    def installed(self, monkeypatch: pytest.MonkeyPatch) -> Iterator["DiskFull"]:
        with monkeypatch.context() as m:
            m.setattr(atomic, "os", self)
            m.setattr(atomic, "tempfile", self)
            yield self


class _FullHandle:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def write(self, data: Any) -> int:
        self.inner.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self) -> "_FullHandle":
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self.inner.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path, tiny_encoder_dir: Path, tiny_generator_dir: Path,
              models: tuple[Any, Any]) -> dict[str, Any]:
    """An uninterrupted build, with the list of files it writes and its model calls."""
    out = tmp_path_factory.mktemp("ref") / "index"
    enc, gen = Counting(models[0]), Counting(models[1])
    recorder = DiskFull()
    mp = pytest.MonkeyPatch()
    try:
        with recorder.installed(mp):
            build_index(_config(corpus_file, out, tiny_encoder_dir, tiny_generator_dir), encoder=enc, generator=gen)
    finally:
        mp.undo()
    return {"path": out, "writes": [t.resolve().relative_to(out.resolve()).as_posix() for t in recorder.targets],
            "calls": enc.n + gen.n}


@pytest.fixture()
def index_copy(tmp_path: Path, reference: dict[str, Any]) -> Path:
    out = tmp_path / "index"
    shutil.copytree(reference["path"], out)
    return out


def _data(root: Path) -> Path:
    return root / json.loads((root / "manifest.json").read_text(encoding="utf-8"))["data_dir"]


def _rewrite_manifest_record(root: Path, name: str) -> None:
    """Make the manifest agree with a file changed on purpose (size and checksum)."""
    from xqg_tui.index import format as fmt

    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    rel = f"{manifest['data_dir']}/{name}"
    manifest["files"][rel] = fmt.file_record(root / rel)
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


# ---------------------------------------------------------------- a full disk

def _pick_writes(writes: list[str]) -> list[int]:
    """One failing write per kind of file the build writes, from setup to the manifest."""
    wanted = [
        lambda w: w == "work/config.json",
        lambda w: w.startswith("work/encode-") and not w.startswith("work/encode-queries-"),
        lambda w: w == "work/progress.json",
        lambda w: w.startswith("work/generate-"),
        lambda w: w.startswith("work/encode-queries-") and w.endswith("000001.npy"),
        lambda w: w.endswith("passage_vectors.npy") and not w.startswith("work/"),
        lambda w: w.endswith("generated.jsonl"),
        lambda w: w.endswith("fused_vectors.npy"),
        lambda w: w == "manifest.json",
    ]
    picks = []
    for pred in wanted:
        matches = [i for i, w in enumerate(writes) if pred(w)]
        assert matches, "the build no longer writes a file of this kind"
        picks.append(matches[len(matches) // 2])
    return picks


def test_disk_full_stops_cleanly_and_resumes_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference, corpus_file,
                                                           tiny_encoder_dir, tiny_generator_dir, models) -> None:
    writes = reference["writes"]
    for case, fail_at in enumerate(_pick_writes(writes)):
        out = tmp_path / f"index{case}"
        cfg = _config(corpus_file, out, tiny_encoder_dir, tiny_generator_dir)
        enc, gen = Counting(models[0]), Counting(models[1])
        with DiskFull(fail_at).installed(monkeypatch) as disk, pytest.raises(DiskFullError) as err:
            build_index(cfg, encoder=enc, generator=gen)
        assert disk.failed is not None
        line = err.value.one_line()
        assert "\n" not in line and "disk full" in line and disk.failed.name in line, line
        assert "free some space and run the same build again" in line, line
        # The half-written file is gone; the file it would have replaced is untouched.
        stray = [p for p in out.rglob("*.tmp") if p.is_file()]
        assert not stray, stray
        # Not complete (a manifest that failed to write never appears), and says so; a
        # build that had saved nothing yet leaves no folder behind at all.
        assert not (out / "manifest.json").exists()
        with pytest.raises(IndexError_, match="incomplete" if (out / "work").exists() else "no such index folder"):
            open_index(out)
        assert (out / "work").exists() or fail_at <= 1, writes[fail_at]
        # The disk is back: the same build finishes, identical, computing only what was lost.
        enc2, gen2 = Counting(models[0]), Counting(models[1])
        build_index(cfg, encoder=enc2, generator=gen2)
        assert _digests(out) == _digests(reference["path"]), writes[fail_at]
        lost = 1 if any(writes[fail_at].startswith(f"work/{d}") for d in CHUNK_FILE_DIRS) else 0
        assert enc.n + gen.n + enc2.n + gen2.n == reference["calls"] + lost, writes[fail_at]


def test_disk_full_during_rebuild_keeps_the_last_complete_index(index_copy: Path, monkeypatch: pytest.MonkeyPatch, reference,
                                                                 corpus_file, tiny_encoder_dir, tiny_generator_dir) -> None:
    # ENOSPC from outside the atomic writers (copying a file into the new data folder).
    def full(src: Path, dst: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(builder_mod, "_link_or_copy", full)
    cfg = _config(corpus_file, index_copy, tiny_encoder_dir, tiny_generator_dir, alpha=0.5)
    with pytest.raises(DiskFullError) as err:
        build_index(cfg, encoder=Forbidden(), generator=Forbidden())
    assert "disk full" in err.value.one_line() and "run the same build again" in err.value.one_line()
    assert _digests(index_copy) == _digests(reference["path"])
    assert open_index(index_copy, verify=True).search_defaults["alpha"] != 0.5
    monkeypatch.undo()
    build_index(cfg, encoder=Forbidden(), generator=Forbidden())
    assert open_index(index_copy).search_defaults["alpha"] == 0.5


def test_cli_disk_full_is_one_line_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corpus_file, tiny_encoder_dir) -> None:
    argv = ["build", "--corpus", str(corpus_file), "--out", str(tmp_path / "ix"), "--encoder", str(tiny_encoder_dir),
            "--generator", "none", "--chunk-size", "4", "--quiet"]
    with DiskFull(3).installed(monkeypatch):
        code, out, err = _cli(argv)
    assert code == 2 and out == ""
    assert "disk full" in _one_error_line(err) and "resumes" in err
    code, _, err = _cli(argv)
    assert code == 0, err
    assert open_index(tmp_path / "ix").size == 12


# ---------------------------------------------------------------- damaged or foreign indexes

def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _edit_manifest(root: Path, change) -> None:
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _damage_first_line(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(["not json\n"] + lines[1:]), encoding="utf-8")


DAMAGE = {
    "flipped vector byte": (lambda r: _flip_byte(_data(r) / "passage_vectors.npy", -3), r"passage_vectors\.npy: checksum mismatch.*rebuild"),
    "flipped query byte": (lambda r: _flip_byte(_data(r) / "generated.jsonl", 5), r"generated\.jsonl: checksum mismatch"),
    "truncated vectors": (lambda r: _truncate(_data(r) / "query_vectors" / "ar.npy", 200), r"ar\.npy: 200 bytes, the manifest says \d+ \(truncated"),
    "truncated, manifest agrees": (
        lambda r: (_truncate(_data(r) / "query_vectors" / "ja.npy", 300), _rewrite_manifest_record(r, "query_vectors/ja.npy")),
        r"ja\.npy: truncated or damaged vector file.*rebuild"),
    "missing file": (lambda r: (_data(r) / "query_counts.npy").unlink(), r"query_counts\.npy: missing from the index"),
    "newer format": (lambda r: _edit_manifest(r, lambda m: m.update(format_version=2)),
                     r"index format version 2, this xqg reads version 1.*rebuild the index with this version"),
    "not an xqg manifest": (lambda r: _edit_manifest(r, lambda m: m.update(format="other")), r"not an xqg index"),
    "manifest not JSON": (lambda r: (r / "manifest.json").write_text("{", encoding="utf-8"), r"manifest\.json: not valid JSON"),
    "manifest field missing": (lambda r: _edit_manifest(r, lambda m: m.pop("counts")), r"field 'counts' missing"),
    "file not listed": (lambda r: _edit_manifest(r, lambda m: m["files"].pop(f"{m['data_dir']}/passage_vectors.npy")),
                        r"passage_vectors\.npy is not listed"),
    "wrong field type": (lambda r: _edit_manifest(r, lambda m: m["counts"].update(passages="many")), r"damaged index"),
    "damaged row, manifest agrees": (
        lambda r: (_damage_first_line(_data(r) / "passages.jsonl"), _rewrite_manifest_record(r, "passages.jsonl")),
        r"passages\.jsonl:1: damaged line"),
    "lines missing, manifest agrees": (
        lambda r: ((_data(r) / "passages.jsonl").write_text("not json\n", encoding="utf-8"), _rewrite_manifest_record(r, "passages.jsonl")),
        r"passages\.jsonl: 1 lines for 12 passages"),
    "incomplete": (lambda r: ((r / "manifest.json").unlink(), (r / "work").mkdir()),
                   r"incomplete.*run the same `xqg build` command again"),
    "not an index": (lambda r: (r / "manifest.json").unlink(), r"not an xqg index \(no manifest\.json\)"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_index_is_refused_clearly(case: str, index_copy: Path, models) -> None:
    import re

    damage, pattern = DAMAGE[case]
    damage(index_copy)
    with pytest.raises(IndexError_) as err:
        open_index(index_copy)
    assert re.search(pattern, err.value.one_line()), err.value.one_line()
    with pytest.raises(IndexError_):
        Searcher.open(index_copy, encoder=models[0])
    # The CLI: one line, and no results printed.
    for argv in (["search", "--index", str(index_copy), "Tokyo"], ["index", "verify", str(index_copy)]):
        code, out, err_text = _cli(argv)
        assert code == 2 and out == "", (argv, out)
        assert re.search(pattern, _one_error_line(err_text)), err_text


def test_rebuilding_a_damaged_index_recomputes_instead_of_reusing(index_copy: Path, reference, corpus_file: Path,
                                                                   tiny_encoder_dir: Path, tiny_generator_dir: Path, models) -> None:
    # "Rebuild it" is the advice for a damaged index: the rebuild must not hard-link
    # the damaged file into the new index and record its new checksum.
    _flip_byte(_data(index_copy) / "passage_vectors.npy", -3)
    events: list[Any] = []
    enc, gen = Counting(models[0]), Counting(models[1])
    build_index(_config(corpus_file, index_copy, tiny_encoder_dir, tiny_generator_dir), progress=events.append, encoder=enc, generator=gen)
    assert any(e.level == "warning" and "damaged" in e.message for e in events)
    assert enc.n + gen.n == reference["calls"]
    assert _digests(index_copy) == _digests(reference["path"])
    open_index(index_copy, verify=True)


def test_large_index_checks_sizes_on_open_and_checksums_on_verify(index_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Above FULL_VERIFY_BYTES opening skips the hashing; `xqg index verify` does it.
    monkeypatch.setattr(store, "FULL_VERIFY_BYTES", 0)
    _flip_byte(_data(index_copy) / "passage_vectors.npy", -3)
    open_index(index_copy)  # same size: not noticed without hashing (documented)
    with pytest.raises(IndexError_, match="checksum mismatch"):
        open_index(index_copy, verify=True)
    code, _, err = _cli(["index", "verify", str(index_copy)])
    assert code == 2 and "checksum mismatch" in err
    _truncate(_data(index_copy) / "passage_vectors.npy", 100)
    with pytest.raises(IndexError_, match="truncated"):
        open_index(index_copy)


def test_intact_index_verifies(index_copy: Path) -> None:
    code, out, err = _cli(["index", "verify", str(index_copy)])
    assert code == 0 and "OK" in out and err == ""


def _perturbed_encoder(src: Path, dst: Path) -> Path:
    """The same encoder with slightly different weights: same shapes, other vectors."""
    from safetensors.numpy import load_file, save_file

    shutil.copytree(src, dst)
    tensors = load_file(str(dst / "model.safetensors"))
    name = sorted(k for k in tensors if k.endswith("weight") and tensors[k].ndim == 2)[0]
    tensors[name] = (tensors[name] + np.float32(0.05)).astype(tensors[name].dtype)
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


def test_searcher_refuses_an_encoder_that_differs(index_copy: Path, tmp_path: Path, tiny_encoder_dir: Path, tiny_e5_encoder_dir: Path) -> None:
    from xqg_tui.models.encoder import Encoder

    # Other conventions (mean pooling, normalised, prefixes) on the same weights.
    with pytest.raises(IndexError_) as err:
        Searcher.open(index_copy, encoder=Encoder.load(str(tiny_e5_encoder_dir)))
    assert "built with encoder" in err.value.one_line() and "search with the encoder the index was built with" in err.value.one_line()
    # Other weights, same architecture and size.
    other = Encoder.load(str(_perturbed_encoder(tiny_encoder_dir, tmp_path / "other")))
    with pytest.raises(IndexError_) as err:
        Searcher.open(index_copy, encoder=other)
    assert "weights sha256" in err.value.one_line() and "rebuild" in err.value.one_line()
    Searcher.open(index_copy, encoder=Encoder.load(str(tiny_encoder_dir)))  # the right one is accepted


def test_index_whose_encoder_folder_changed_gives_no_results(tmp_path: Path, corpus_file: Path, tiny_encoder_dir: Path) -> None:
    enc_dir = tmp_path / "encoder"
    shutil.copytree(tiny_encoder_dir, enc_dir)
    build_index(_config(corpus_file, tmp_path / "ix", enc_dir, None, langs=None))
    code, out, _ = _cli(["search", "--index", str(tmp_path / "ix"), "--k", "2", "--json", "Tokyo"])
    assert code == 0 and len(json.loads(out)["hits"]) == 2
    # Someone retrains / replaces the model in that folder: the index no longer matches it.
    shutil.rmtree(enc_dir)
    _perturbed_encoder(tiny_encoder_dir, enc_dir)
    code, out, err = _cli(["search", "--index", str(tmp_path / "ix"), "Tokyo"])
    assert code == 2 and out == ""
    assert "built with encoder" in _one_error_line(err) and "weights sha256" in err


# ---------------------------------------------------------------- two processes

def _signature(searcher: Searcher, query: str = "Tokyo capital Japan") -> tuple:
    r = searcher.search(query, k=5, alpha=0.5)
    return tuple((h.docid, round(h.score, 5)) for h in r.augmented), tuple(m.text for h in r.augmented for m in h.matched)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the build exited ({proc.returncode}) before {path.name}")
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.02)


@pytest.mark.timeout(400)
def test_search_during_a_build_and_a_second_build_is_locked_out(tmp_path: Path, corpus_file: Path, tiny_encoder_dir: Path,
                                                                 tiny_generator_dir: Path, models) -> None:
    from xqg_tui.models.encoder import Encoder

    folder = tmp_path / "index"
    # Another process will rebuild the folder with another seed, stopping twice on
    # the way: mid-generation, and just after the new manifest is in place. It
    # starts now (its imports take a while) and waits for the "go" file.
    hold = tmp_path / "hold"
    hold.mkdir()
    spec = {"corpus": str(corpus_file), "out": str(folder), "encoder": str(tiny_encoder_dir), "generator": str(tiny_generator_dir),
            "log": str(tmp_path / "build.log"), "seed": 8, "hold_dir": str(hold), "wait_for": str(hold / "go"),
            "hold": ["generate:3:before", "write:manifest.json:after"]}
    (tmp_path / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", XQG_THREADS="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path / "spec.json")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    # A complete index (the worker's settings, seed 7), built here.
    build_index(_config(corpus_file, folder, tiny_encoder_dir, tiny_generator_dir, chunk_size=2), encoder=models[0], generator=models[1])
    old_searcher = Searcher.open(folder, encoder=models[0])
    old = _signature(old_searcher)
    (hold / "go").touch()

    # Meanwhile a reader opens the folder and searches, over and over.
    seen: list[tuple] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    reader_encoder = Encoder.load(str(tiny_encoder_dir))  # tokenizers are not shared across threads

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(_signature(Searcher.open(folder, encoder=reader_encoder)))
            except BaseException as exc:  # noqa: BLE001 -- any failure is the finding
                errors.append(exc)
                return
            time.sleep(0.05)  # leave the build some CPU on a small machine

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        _wait_for(hold / "held-0", proc)
        # Mid-build: the last complete index is what everyone sees.
        assert _signature(Searcher.open(folder, encoder=models[0])) == old
        # A second build on the same folder fails at once, with a clear message.
        t0 = time.monotonic()
        with pytest.raises(BuildLockedError) as err:
            build_index(_config(corpus_file, folder, tiny_encoder_dir, tiny_generator_dir), encoder=Forbidden(), generator=Forbidden())
        assert time.monotonic() - t0 < 5
        assert "another build is writing to this index folder" in err.value.one_line()
        code, _, err_text = _cli(["build", "--corpus", str(corpus_file), "--out", str(folder), "--quiet"])
        assert code == 2 and "another build" in _one_error_line(err_text)
        (hold / "release-0").touch()

        _wait_for(hold / "held-1", proc)
        # The new manifest is in place: new openers see the new index...
        new = _signature(Searcher.open(folder, encoder=models[0]))
        assert new[1] != old[1], "seed 8 generated other queries"
        # ...and a searcher opened before keeps working on the old one.
        assert _signature(old_searcher) == old
        (hold / "release-1").touch()
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        for j in range(2):
            (hold / f"release-{j}").touch()
        stop.set()
        thread.join(timeout=60)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert not errors, errors
    assert set(seen) <= {old, new} and old in seen and new in seen, (len(seen), set(seen) - {old, new})
    # The old data folder is deleted now; the old searcher still answers (its files stay mapped).
    assert len([p for p in folder.iterdir() if p.name.startswith("data-")]) == 1
    assert _signature(old_searcher) == old
    assert _signature(Searcher.open(folder, encoder=models[0])) == new


def test_open_retries_when_a_build_swaps_the_index_meanwhile(index_copy: Path, monkeypatch: pytest.MonkeyPatch, corpus_file: Path,
                                                             tiny_encoder_dir: Path, tiny_generator_dir: Path) -> None:
    real_verify = store.verify_files
    swapped: list[bool] = []

    def verify_after_a_swap(root: Path, manifest: dict[str, Any], full: bool | None = None) -> None:
        if not swapped:
            swapped.append(True)  # first, since the rebuild opens the index too
            # A model-free rebuild finishes between our reading the manifest and its files:
            # the manifest we hold points at a data folder that no longer exists.
            build_index(_config(corpus_file, index_copy, tiny_encoder_dir, tiny_generator_dir, alpha=0.3),
                        encoder=Forbidden(), generator=Forbidden())
        real_verify(root, manifest, full)

    monkeypatch.setattr(store, "verify_files", verify_after_a_swap)
    index = open_index(index_copy)
    assert swapped and index.search_defaults["alpha"] == 0.3


def test_a_killed_builds_lock_does_not_block(tmp_path: Path, corpus_file: Path, tiny_encoder_dir: Path) -> None:
    # The lock is an OS lock on an open file: it dies with its process.
    code = (
        "import os, signal, sys; from filelock import FileLock; "
        f"FileLock({str(tmp_path / 'ix' / '.lock')!r}, timeout=0).acquire(); os.kill(os.getpid(), signal.SIGKILL)"
    )
    (tmp_path / "ix").mkdir()
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    assert (tmp_path / "ix" / ".lock").exists()
    build_index(_config(corpus_file, tmp_path / "ix", tiny_encoder_dir, None, langs=None))
    assert open_index(tmp_path / "ix").size == 12
