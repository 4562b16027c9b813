"""Reliability, second round: a user's files are never touched, a score is never
printed for nothing, every stage says "disk full" on a real full disk and cleans
its staging files, and index arrays must match their manifest."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xqg_tui.errors import DiskFullError, IndexError_, XQGError
from xqg_tui.index import format as fmt
from xqg_tui.index.builder import BuildConfig, build_index
from xqg_tui.index.store import open_index
from xqg_tui.io.atomic import is_disk_full
from xqg_tui.io.corpus import write_corpus_jsonl
from xqg_tui.io.queries import read_queries
from xqg_tui.search import Searcher


def _cli(argv: list[str]) -> tuple[int, str, str]:
    from xqg_tui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def _one_line(err: str) -> str:
    assert err.startswith("xqg: error: ") and err.count("\n") == 1, repr(err)
    assert "Traceback" not in err
    return err


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (and empty folders) with its sha256: byte-identity."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory, tiny_corpus) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    write_corpus_jsonl(path, tiny_corpus[:12])
    return path


def _build_argv(corpus: Path, out: Path, encoder: Path, *extra: str) -> list[str]:
    return ["build", "--corpus", str(corpus), "--out", str(out), "--encoder", str(encoder),
            "--generator", "none", "--chunk-size", "4", "--quiet", *extra]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path, tiny_encoder_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("ix") / "index"
    code, _, err = _cli(_build_argv(corpus_file, out, tiny_encoder_dir))
    assert code == 0, err
    return out


# ---------------------------------------------------------------- 1. never touch a user's files

def _user_project(root: Path) -> None:
    (root / "work").mkdir(parents=True)
    (root / "manifest.json").write_text('{"name": "my app"}\n', encoding="utf-8")
    (root / "work" / "chapter1.tex").write_text("draft\n", encoding="utf-8")


def _user_data_file(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "data-000001").write_text("my numbers\n", encoding="utf-8")


def _user_notes(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "notes.txt").write_text("keep me\n", encoding="utf-8")
    (root / "work").mkdir()
    (root / "work" / "config.json").write_text('{"theme": "dark"}', encoding="utf-8")


@pytest.mark.parametrize("make", [_user_project, _user_data_file, _user_notes], ids=["manifest+work", "data-file", "notes"])
def test_build_refuses_a_folder_that_is_not_an_index(tmp_path: Path, corpus_file: Path, tiny_encoder_dir: Path, make) -> None:
    target = tmp_path / "proj"
    make(target)
    before = _tree(target)
    code, out, err = _cli(_build_argv(corpus_file, target, tiny_encoder_dir))
    assert code == 2 and out == ""
    line = _one_line(err)
    assert str(target) in line and "not an xqg index folder" in line and "nothing was changed" in line, line
    assert _tree(target) == before  # every file byte-identical, nothing added (not even a lock)


def test_build_accepts_missing_empty_and_own_folders(tmp_path: Path, corpus_file: Path, tiny_encoder_dir: Path, index_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _cli(_build_argv(corpus_file, empty, tiny_encoder_dir))[0] == 0
    assert _cli(_build_argv(corpus_file, tmp_path / "a" / "new", tiny_encoder_dir))[0] == 0
    rebuilt = tmp_path / "copy"
    shutil.copytree(index_dir, rebuilt)
    (rebuilt / "README.txt").write_text("my note about this index\n", encoding="utf-8")
    code, _, err = _cli(_build_argv(corpus_file, rebuilt, tiny_encoder_dir, "--alpha", "0.3"))
    assert code == 0, err
    assert open_index(rebuilt).search_defaults["alpha"] == 0.3
    assert (rebuilt / "README.txt").read_text(encoding="utf-8") == "my note about this index\n"


def test_a_build_stopped_before_its_first_manifest_resumes(tmp_path: Path, corpus_file: Path, tiny_encoder_dir: Path) -> None:
    out = tmp_path / "ix"
    cfg = BuildConfig(corpus=corpus_file, out=out, encoder=str(tiny_encoder_dir), generator="none", chunk_size=4)

    class Stop(Exception):
        pass

    class StopAfterOneChunk:
        def __init__(self) -> None:
            from xqg_tui.models.encoder import Encoder

            self.inner = Encoder.load(str(tiny_encoder_dir))
            self.calls = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def encode_passages(self, texts: Any, *a: Any, **k: Any) -> Any:
            self.calls += 1
            if self.calls > 1:
                raise Stop()
            return self.inner.encode_passages(texts, *a, **k)

    with pytest.raises(Stop):
        build_index(cfg, encoder=StopAfterOneChunk())
    assert not (out / "manifest.json").exists() and (out / "work" / "config.json").exists()
    code, _, err = _cli(_build_argv(corpus_file, out, tiny_encoder_dir))
    assert code == 0, err
    assert open_index(out).size == 12


def test_a_failed_build_in_a_new_folder_leaves_nothing(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"docid": "a", "title": "t"}\n', encoding="utf-8")
    out = tmp_path / "new"
    code, _, err = _cli(_build_argv(bad, out, tiny_encoder_dir))
    assert code == 2 and "field 'text'" in _one_line(err)
    assert not out.exists()


def test_convert_never_replaces_a_users_file(tmp_path: Path) -> None:
    from tests.test_xquad_convert import put_json, squad

    en = put_json(tmp_path / "en.json", squad("en"))
    ar = put_json(tmp_path / "ar.json", squad("ar"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "corpus.jsonl").write_text("my corpus\n", encoding="utf-8")
    argv = ["convert", "xquad", "--en", str(en), "--lang-file", f"ar={ar}", "--out", str(out)]
    code, _, err = _cli(argv)
    assert code == 2 and "corpus.jsonl" in _one_line(err) and "--overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == ["corpus.jsonl"]
    assert (out / "corpus.jsonl").read_text(encoding="utf-8") == "my corpus\n"
    assert _cli(argv + ["--overwrite"])[0] == 0
    assert (out / "corpus.jsonl").read_text(encoding="utf-8") != "my corpus\n"
    code, _, err = _cli(argv)  # the same conversion again replaces nothing that differs: fine
    assert code == 0, err


def test_retrieve_out_never_creates_folders(tmp_path: Path, index_dir: Path) -> None:
    queries = tmp_path / "q.tsv"
    queries.write_text("q1\tTokyo capital\n", encoding="utf-8")
    target = tmp_path / "no" / "such" / "run.trec"
    code, _, err = _cli(["retrieve", "--index", str(index_dir), "--queries", str(queries), "--lang", "ja", "--out", str(target)])
    assert code == 2 and "no such folder" in _one_line(err)
    assert not (tmp_path / "no").exists()
    code, _, err = _cli(["retrieve", "--index", str(index_dir), "--queries", str(queries), "--lang", "ja", "--out", str(tmp_path)])
    assert code == 2 and "is a folder" in _one_line(err) and ".tmp" not in err


# ---------------------------------------------------------------- 2. never a silently wrong number

@pytest.fixture(scope="module")
def run_files(tmp_path_factory: pytest.TempPathFactory, index_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    q = root / "q.jsonl"
    rows = [("q1", "capital of Japan", "d02", "Tokyo"), ("q2", "capital of Russia", "d04", "Moscow"),
            ("q3", "Finnish composer", "d10", "Sibelius")]
    q.write_text("".join(json.dumps({"id": i, "question": t, "answers": [a], "lang": "ja"}) + "\n" for i, t, _, a in rows),
                 encoding="utf-8")
    good = root / "good.qrels"
    good.write_text("".join(f"{i} 0 {d} 1\n" for i, _, d, _ in rows), encoding="utf-8")
    foreign = root / "foreign.qrels"
    foreign.write_text("".join(f"{i} 0 other-{d} 1\n" for i, _, d, _ in rows), encoding="utf-8")
    partial = root / "partial.qrels"
    partial.write_text(f"q1 0 d02 1\nq2 0 zz-{rows[1][2]} 1\nq9 0 d01 1\n", encoding="utf-8")
    run = root / "run.trec"
    code, _, err = _cli(["retrieve", "--index", str(index_dir), "--queries", str(q), "--out", str(run), "--quiet"])
    assert code == 0, err
    return {"queries": q, "good": good, "foreign": foreign, "partial": partial, "run": run}


def test_eval_refuses_qrels_of_another_corpus(run_files: dict[str, Path], index_dir: Path) -> None:
    code, out, err = _cli(["eval", "--run", str(run_files["run"]), "--queries", str(run_files["queries"]),
                           "--qrels", str(run_files["foreign"]), "--index", str(index_dir)])
    assert code == 2 and out == ""
    assert "none of the 3 relevant passages" in _one_line(err) and "other-d02" in err


def test_eval_without_collection_warns_when_no_relevant_docid_is_ranked(run_files: dict[str, Path]) -> None:
    code, out, err = _cli(["eval", "--run", str(run_files["run"]), "--queries", str(run_files["queries"]),
                           "--qrels", str(run_files["foreign"]), "--json"])
    assert code == 0
    assert "no relevant docid of the qrels occurs anywhere in the run" in err
    assert json.loads(out)["unmatched"] == {"qrels_docids_never_ranked": 3}


def test_eval_reports_partial_mismatches(run_files: dict[str, Path], index_dir: Path) -> None:
    code, out, err = _cli(["eval", "--run", str(run_files["run"]), "--queries", str(run_files["queries"]),
                           "--qrels", str(run_files["partial"]), "--index", str(index_dir), "--json"])
    assert code == 0, err
    unmatched = json.loads(out)["unmatched"]
    assert unmatched == {"queries_without_qrels": 1, "qrels_queries_not_in_queries": 1,
                         "qrels_docids_not_in_collection": 1, "queries_without_findable_relevant": 1}
    assert err.count("xqg: warning:") == 3
    code, out, err = _cli(["eval", "--run", str(run_files["run"]), "--queries", str(run_files["queries"]),
                           "--qrels", str(run_files["good"]), "--index", str(index_dir), "--json"])
    assert code == 0 and err == "" and "unmatched" not in json.loads(out)


@pytest.mark.parametrize("k", ["0", "-3", "2.5"])
def test_k_below_one_is_a_usage_error(index_dir: Path, tmp_path: Path, k: str) -> None:
    code, out, err = _cli(["search", "--index", str(index_dir), "--k", k, "Tokyo"])
    assert code == 2 and out == "" and "--k" in err
    q = tmp_path / "q.tsv"
    q.write_text("q1\tTokyo\n", encoding="utf-8")
    code, _, err = _cli(["retrieve", "--index", str(index_dir), "--queries", str(q), "--lang", "ja", "--k", k, "--out", str(tmp_path / "r.trec")])
    assert code == 2 and not (tmp_path / "r.trec").exists()


def test_library_k_below_one_raises(index_dir: Path) -> None:
    s = Searcher.open(index_dir)
    for k in (0, -1):
        with pytest.raises(XQGError, match="k must be"):
            s.search("Tokyo", k=k)
    assert len(s.search("Tokyo", k=1).plain) == 1


# ---------------------------------------------------------------- 3. a real full disk, at every stage

def _can_mount() -> str | None:
    if os.geteuid() != 0:
        return "needs root to mount a small tmpfs"
    if shutil.which("mount") is None:
        return "no mount command"
    return None


@contextlib.contextmanager
def _tmpfs(path: Path, size_kb: int):
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _used_kb(root: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in root.rglob("*") if p.is_file()) // 1024


@pytest.mark.skipif(_can_mount() is not None, reason=str(_can_mount()))
def test_real_full_disk_at_every_stage(tmp_path: Path, tiny_corpus, tiny_encoder_dir: Path, tiny_generator_dir: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    write_corpus_jsonl(corpus, tiny_corpus)

    def build(out: Path) -> tuple[int, str, str]:
        return _cli(["build", "--corpus", str(corpus), "--out", str(out), "--encoder", str(tiny_encoder_dir),
                     "--generator", str(tiny_generator_dir), "--langs", "ar,ja", "--queries-per-lang", "2",
                     "--chunk-size", "4", "--seed", "3", "--quiet"])

    ref = tmp_path / "ref"
    assert build(ref)[0] == 0
    # The smallest tmpfs (in 4 KiB pages) a complete build fits in, by bisection.
    lo, hi = 1, 64
    while hi - lo > 1:
        mid = (lo + hi) // 2
        with _tmpfs(tmp_path / f"probe{mid}", mid * 4) as mnt:
            ok = build(mnt / "ix")[0] == 0
        lo, hi = (lo, mid) if ok else (mid, hi)
    need = hi
    seen: set[str] = set()
    for pages in sorted({max(1, need * i // 10) for i in range(1, 10)}):
        mnt = tmp_path / f"mnt{pages}"
        with _tmpfs(mnt, pages * 4):
            out = mnt / "ix"
            code, stdout, err = build(out)
            assert code != 0, f"{pages} pages of {need} were enough"
            line = _one_line(err)
            assert code == 2 and "disk full" in line and "run the same build again" in line, line
            where = line[len("xqg: error: "):].split(": disk full")[0]
            assert where.startswith(str(out)), line  # names the file it was writing
            seen.add(re.sub(r"[0-9a-f]{6,}", "#", os.path.relpath(where, out)))
            # No staging leftovers: temp files and half-assembled data folders are gone.
            leftovers = [p for p in mnt.rglob("*") if p.name.endswith(".tmp")]
            assert not leftovers, leftovers
            # Room again: the same build finishes and equals the uninterrupted one.
            subprocess.run(["mount", "-o", f"remount,size={need * 8}k", str(mnt)], check=True)
            code, _, err = build(out)
            assert code == 0, err
            ref_m = json.loads((ref / "manifest.json").read_text(encoding="utf-8"))
            new_m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            strip = lambda m: {rel.split("/", 1)[1]: rec["sha256"] for rel, rec in m["files"].items()}  # noqa: E731
            assert strip(new_m) == strip(ref_m)
    print(f"disk full hit ({need} pages needed):", sorted(seen))
    assert len(seen) >= 3, f"the sizes tried hit too few stages: {seen}"


def test_numpy_short_write_counts_as_disk_full() -> None:
    assert is_disk_full(OSError("12288 requested and 2016 written"))
    assert is_disk_full(OSError(28, "No space left on device"))
    assert not is_disk_full(OSError(13, "Permission denied"))
    assert not is_disk_full(OSError("something else"))


def test_short_write_in_encode_stage_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corpus_file: Path,
                                                    tiny_encoder_dir: Path) -> None:
    real_save = np.save

    def short(fh: Any, arr: Any, allow_pickle: bool = False) -> None:
        raise OSError(f"{arr.nbytes} requested and 16 written")

    monkeypatch.setattr(np, "save", short)
    out = tmp_path / "ix"
    code, _, err = _cli(_build_argv(corpus_file, out, tiny_encoder_dir))
    monkeypatch.setattr(np, "save", real_save)
    line = _one_line(err)
    assert code == 2 and "disk full while writing this file" in line and ".npy" in line, line
    assert not [p for p in tmp_path.rglob("*.tmp")]


# ---------------------------------------------------------------- 4. arrays must match the manifest

def _resign(root: Path) -> None:
    """Make the manifest's sizes and checksums agree with edited files (an attacker or a bad tool)."""
    m = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    for rel in m["files"]:
        m["files"][rel] = fmt.file_record(root / rel)
    (root / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


def _edit(root: Path, name: str, change) -> None:
    m = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    path = root / m["data_dir"] / name
    arr = np.load(path, allow_pickle=False)
    path.unlink()  # hard links: never write through to the source index
    np.save(path, change(arr), allow_pickle=False)
    _resign(root)


@pytest.mark.parametrize("name,change,expect", [
    ("fused_vectors.npy", lambda a: a[:3], "fused_vectors.npy: shape (3,"),
    ("fused_vectors.npy", lambda a: a[:, :5], "fused_vectors.npy: shape (12, 5)"),
    ("fused_vectors.npy", lambda a: a.astype(np.float16), "float16"),
    ("passage_vectors.npy", lambda a: a[:, :5], "passage_vectors.npy: shape (12, 5)"),
], ids=["fused-rows", "fused-cols", "fused-dtype", "passage-cols"])
def test_array_shapes_are_checked_at_open_and_verify(tmp_path: Path, index_dir: Path, name: str, change, expect: str) -> None:
    ix = tmp_path / "ix"
    shutil.copytree(index_dir, ix)
    _edit(ix, name, change)
    with pytest.raises(IndexError_, match="the manifest promises") as err:
        open_index(ix)
    assert expect in str(err.value)
    code, out, err_text = _cli(["index", "verify", str(ix)])
    assert code == 2 and "OK" not in out and expect in _one_line(err_text)


def test_a_changed_dim_in_the_manifest_is_refused(tmp_path: Path, index_dir: Path) -> None:
    ix = tmp_path / "ix"
    shutil.copytree(index_dir, ix)
    m = json.loads((ix / "manifest.json").read_text(encoding="utf-8"))
    m["counts"]["dim"] = 768
    (ix / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    code, out, err = _cli(["index", "verify", str(ix)])
    assert code == 2 and "the manifest promises" in _one_line(err) and "768" in err


def test_encoder_mismatch_says_what_differs(index_dir: Path, tiny_e5_encoder_dir: Path, tmp_path: Path) -> None:
    from xqg_tui.models.encoder import Encoder

    s = Searcher.open(index_dir)
    other = tmp_path / "wide"
    shutil.copytree(tiny_e5_encoder_dir, other)
    with pytest.raises(IndexError_) as err:
        s._check_encoder(Encoder.load(str(other)))
    line = err.value.one_line()
    assert "encoder mismatch" in line and "(pooling 'cls'), the loaded encoder" in line and "has pooling 'mean'" in line, line


# ---------------------------------------------------------------- 5. smaller ones

def test_a_pipe_as_corpus_is_one_clear_line(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    out = tmp_path / "ix"
    code, _, err = _cli(_build_argv(fifo, out, tiny_encoder_dir))
    assert code == 2 and "pipe" in _one_line(err) and "save it to a file first" in err
    assert not out.exists()


def test_quoted_tsv_field_with_a_tab_is_read_like_the_corpus(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text('q1\t"a question\twith a tab"\nq2\t"Quoted" start, plain rest\nq3\tplain\n', encoding="utf-8")
    got = {q.qid: q.text for q in read_queries(path, lang="fi")}
    assert got == {"q1": "a question\twith a tab", "q2": '"Quoted" start, plain rest', "q3": "plain"}
