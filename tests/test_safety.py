"""Nothing a user opens runs code they did not ask for, and no path escapes its folder.

* source scan: no ``trust_remote_code`` other than False, every ``np.load`` with
  ``allow_pickle=False``, no pickle / ``torch.load``, model weights only from safetensors;
* planted pickles (in an index, in a build's work files, as model weights) are
  refused and never executed (each carries a payload that would leave a marker file);
* manifests with ``..``, absolute paths or symlinks leading out are refused, and a
  build never deletes or writes outside its folder.
"""
from __future__ import annotations

import ast
import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xqg_tui.errors import IndexError_, ModelError, XQGError
from xqg_tui.index import format as fmt
from xqg_tui.index.builder import BuildConfig, build_index
from xqg_tui.index.store import open_index
from xqg_tui.io.corpus import write_corpus_jsonl

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "xqg_tui").rglob("*.py"))


# ---------------------------------------------------------------- source scan

def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _func_name(call: ast.Call) -> str:
    f = call.func
    parts = []
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return ".".join(reversed(parts))


def test_sources_found() -> None:
    assert len(SOURCES) > 20 and any(p.name == "encoder.py" for p in SOURCES)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_remote_code_and_no_pickle_in_source(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            assert not {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"} & {n.split(".")[0] for n in names}, \
                f"{path}:{node.lineno}: imports a pickle module"
    lines = text.splitlines()
    for call in _calls(tree):
        name = _func_name(call)
        where = f"{path}:{call.lineno}: {lines[call.lineno - 1].strip()[:80]}"
        trc = _kw(call, "trust_remote_code")
        assert trc is None or (isinstance(trc, ast.Constant) and trc.value is False), f"{where}: trust_remote_code"
        pickle_kw = _kw(call, "allow_pickle")
        assert pickle_kw is None or (isinstance(pickle_kw, ast.Constant) and pickle_kw.value is False), f"{where}: allow_pickle"
        if name in ("np.load", "numpy.load"):
            assert isinstance(pickle_kw, ast.Constant) and pickle_kw.value is False, f"{where}: np.load without allow_pickle=False"
        assert name not in ("torch.load", "pickle.load", "pickle.loads"), f"{where}: unpickles"
        if name.endswith(".from_pretrained") and "Model" in name:
            # Weights: safetensors only (a keyword, or the kwargs dict built beside it).
            safe = _kw(call, "use_safetensors")
            if safe is None:
                assert any(k.arg is None for k in call.keywords), f"{where}: model loaded without use_safetensors=True"
                assert '"use_safetensors": True' in text, f"{where}: model loaded without use_safetensors=True"
            else:
                assert isinstance(safe, ast.Constant) and safe.value is True, f"{where}: use_safetensors"
    assert "trust_remote_code=True" not in text.replace(" ", "")


# ---------------------------------------------------------------- pickles planted where data is read

class Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, tiny_corpus, tiny_encoder_dir: Path, tiny_generator_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("safety")
    corpus = folder / "corpus.jsonl"
    write_corpus_jsonl(corpus, tiny_corpus[:8])
    build_index(BuildConfig(corpus=corpus, out=folder / "index", encoder=str(tiny_encoder_dir), generator=str(tiny_generator_dir),
                            langs=["ar"], queries_per_lang=1, chunk_size=4, max_new_tokens=4))
    return folder / "index"


@pytest.fixture()
def index_copy(tmp_path: Path, index_dir: Path) -> Path:
    shutil.copytree(index_dir, tmp_path / "index")
    return tmp_path / "index"


def _plant(root: Path, name: str, content: bytes) -> None:
    """Replace an index file and make the manifest vouch for it (size and checksum),
    so only the loader itself stands between the pickle and the user."""
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    rel = f"{manifest['data_dir']}/{name}"
    (root / rel).write_bytes(content)
    manifest["files"][rel] = fmt.file_record(root / rel)
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _object_npy(tmp: Path, marker: Path) -> bytes:
    path = tmp / "evil.npy"
    np.save(path, np.array([Payload(marker), 1], dtype=object), allow_pickle=True)
    return path.read_bytes()


@pytest.mark.parametrize("name", ["passage_vectors.npy", "query_vectors/ar.npy", "query_counts.npy"])
@pytest.mark.parametrize("kind", ["object .npy", "raw pickle"])
def test_planted_pickle_in_an_index_is_refused_and_never_run(index_copy: Path, tmp_path: Path, name: str, kind: str) -> None:
    marker = tmp_path / "pwned"
    content = _object_npy(tmp_path, marker) if kind == "object .npy" else pickle.dumps(Payload(marker))
    assert not marker.exists()
    _plant(index_copy, name, content)
    with pytest.raises(IndexError_) as err:
        open_index(index_copy, verify=True)
    line = err.value.one_line()
    assert name.split("/")[-1] in line and ("pickle" in line or "damaged" in line), line
    from xqg_tui.cli import main

    assert main(["search", "--index", str(index_copy), "Tokyo"]) == 2
    assert not marker.exists(), "the pickle was executed"


def test_planted_pickle_in_work_files_is_refused_and_never_run(tmp_path: Path, tiny_corpus, tiny_encoder_dir: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    write_corpus_jsonl(corpus, tiny_corpus[:8])
    cfg = BuildConfig(corpus=corpus, out=tmp_path / "ix", encoder=str(tiny_encoder_dir), chunk_size=4)

    class Crash:
        def __init__(self, inner: Any) -> None:
            self.inner, self.n = inner, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def encode_passages(self, *a: Any, **k: Any) -> Any:
            self.n += 1
            if self.n == 2:
                raise RuntimeError("crash")
            return self.inner.encode_passages(*a, **k)

    from xqg_tui.models.encoder import Encoder

    enc = Encoder.load(str(tiny_encoder_dir))
    with pytest.raises(RuntimeError):
        build_index(cfg, encoder=Crash(enc))
    (chunk,) = list((tmp_path / "ix" / "work").glob("encode-*/000000.npy"))
    marker = tmp_path / "pwned"
    chunk.write_bytes(_object_npy(tmp_path, marker))
    with pytest.raises(IndexError_) as err:
        build_index(cfg, encoder=enc)
    assert "000000.npy: damaged work file" in err.value.one_line() and "pickle" in err.value.one_line()
    assert "delete that file and run the same build again" in err.value.one_line()
    assert not marker.exists()
    chunk.unlink()  # as the message says: only that chunk is computed again
    build_index(cfg, encoder=enc)
    assert open_index(tmp_path / "ix").size == 8


@pytest.mark.parametrize("loader", ["encoder", "generator"])
def test_model_weights_never_unpickled(tmp_path: Path, tiny_encoder_dir: Path, tiny_generator_dir: Path, loader: str) -> None:
    from xqg_tui.models.encoder import Encoder
    from xqg_tui.models.generator import QueryGenerator

    src = tiny_encoder_dir if loader == "encoder" else tiny_generator_dir
    load = Encoder.load if loader == "encoder" else QueryGenerator.load
    marker = tmp_path / "pwned"
    evil = pickle.dumps(Payload(marker))
    # Only pickled weights: refused before anything reads them.
    only_bin = tmp_path / "only-bin"
    shutil.copytree(src, only_bin)
    (only_bin / "model.safetensors").unlink()
    (only_bin / "pytorch_model.bin").write_bytes(evil)
    with pytest.raises(ModelError) as err:
        load(str(only_bin))
    assert "pickled" in err.value.one_line() or "safetensors" in err.value.one_line()
    # Both: the safetensors file is the one loaded.
    both = tmp_path / "both"
    shutil.copytree(src, both)
    (both / "pytorch_model.bin").write_bytes(evil)
    load(str(both))
    assert not marker.exists(), "pickled weights were loaded"


def test_model_with_remote_code_is_not_run(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    from xqg_tui.models.encoder import Encoder

    folder = tmp_path / "remote"
    shutil.copytree(tiny_encoder_dir, folder)
    marker = tmp_path / "pwned"
    (folder / "evil_model.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.update(model_type="evil-remote", auto_map={"AutoModel": "evil_model.EvilModel", "AutoConfig": "evil_model.EvilConfig"})
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelError):
        Encoder.load(str(folder))
    assert not marker.exists()


# ---------------------------------------------------------------- paths that try to leave the folder

def _edit(root: Path, change) -> None:
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _rename_file_key(old: str, new: str):
    def change(m: dict[str, Any]) -> None:
        m["files"] = {(new if k.endswith(old) else k): v for k, v in m["files"].items()}
    return change


ESCAPES = {
    "data_dir ..": lambda m: m.update(data_dir="../outside"),
    "data_dir absolute": lambda m: m.update(data_dir="/etc"),
    "data_dir nul": lambda m: m.update(data_dir="data\x00"),
    "data_dir backslash": lambda m: m.update(data_dir="\\server\\share"),
    "data_dir not a string": lambda m: m.update(data_dir=["data-000001"]),
    "file ..": _rename_file_key("generated.jsonl", "data-000001/../../outside/generated.jsonl"),
    "file absolute": _rename_file_key("generated.jsonl", "/etc/passwd"),
    "language ..": lambda m: m["generation"].update(langs=["../../outside/x"]),
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_manifest_paths_cannot_escape(index_copy: Path, tmp_path: Path, case: str) -> None:
    (tmp_path / "outside").mkdir()
    _edit(index_copy, ESCAPES[case])
    with pytest.raises(IndexError_) as err:
        open_index(index_copy)
    line = err.value.one_line()
    assert "escapes the index folder" in line or "unsafe path" in line or "not listed" in line, line


def test_symlinks_leading_out_are_refused(index_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    data = index_copy / json.loads((index_copy / "manifest.json").read_text())["data_dir"]
    # A vector file that is a link to a file elsewhere (the manifest even agrees on its content).
    target = outside / "passage_vectors.npy"
    shutil.copy(data / "passage_vectors.npy", target)
    (data / "passage_vectors.npy").unlink()
    (data / "passage_vectors.npy").symlink_to(target)
    with pytest.raises(IndexError_, match="escapes the index folder"):
        open_index(index_copy)
    # The whole data folder a link to elsewhere.
    moved = outside / "data"
    shutil.move(str(data), moved)
    data.symlink_to(moved, target_is_directory=True)
    with pytest.raises(IndexError_, match="escapes the index folder"):
        open_index(index_copy)


def test_build_never_deletes_or_writes_outside(index_copy: Path, tmp_path: Path, tiny_corpus, tiny_encoder_dir: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious", encoding="utf-8")
    # Links in the index folder under every name the builder writes or cleans up.
    _edit(index_copy, lambda m: m.update(data_dir="../outside"))  # and a hostile manifest
    shutil.rmtree(index_copy / "data-000001")
    for name in ("data-000001", ".data-000001.tmp", "data-000099", ".data-000002.tmp"):
        (index_copy / name).symlink_to(outside, target_is_directory=True)
    corpus = tmp_path / "corpus.jsonl"
    write_corpus_jsonl(corpus, tiny_corpus[:8])
    build_index(BuildConfig(corpus=corpus, out=index_copy, encoder=str(tiny_encoder_dir), chunk_size=4))
    assert (outside / "keep.txt").read_text(encoding="utf-8") == "precious"
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert open_index(index_copy).size == 8
    assert not [p for p in index_copy.iterdir() if p.is_symlink()], "the stray links are gone, their targets kept"


def test_language_code_cannot_become_a_path(tmp_path: Path, tiny_corpus, tiny_encoder_dir: Path) -> None:
    from xqg_tui import languages

    code = "../../evil"
    languages.register_language(code, "Evil")
    try:
        corpus = tmp_path / "corpus.jsonl"
        write_corpus_jsonl(corpus, tiny_corpus[:4])
        gen = tmp_path / "gen.jsonl"
        gen.write_text("".join(json.dumps({"docid": p.docid, "generated_queries": {code: ["q"]}}) + "\n" for p in tiny_corpus[:4]),
                       encoding="utf-8")
        with pytest.raises(XQGError) as err:
            build_index(BuildConfig(corpus=corpus, out=tmp_path / "a" / "b" / "ix", encoder=str(tiny_encoder_dir), import_generated=gen))
        assert "cannot be used in an index" in err.value.one_line()
    finally:
        languages._NAMES.pop(languages.normalize_code(code), None)
    assert not list(tmp_path.rglob("evil*"))
