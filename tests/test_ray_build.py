"""``--engine ray``: the same index as a local build (bit for bit), resumable, shardable,
and a one-line error when Ray is missing."""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from xqg_tui.errors import XQGError
from xqg_tui.index.builder import BuildCancelled, BuildConfig, build_index
from xqg_tui.index.store import open_index
from xqg_tui.io.corpus import write_corpus_jsonl

TIMING_FIELDS = {"created"}


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory, tiny_corpus) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    write_corpus_jsonl(path, tiny_corpus[:12])
    return path


def _config(corpus: Path, out: Path, enc: Path, gen: Path | None, **kw) -> BuildConfig:
    base = dict(corpus=corpus, out=out, encoder=str(enc), generator=str(gen) if gen else "none", langs=["ar", "ja"],
                queries_per_lang=2, chunk_size=4, max_new_tokens=6, seed=7, device="cpu")
    base.update(kw)
    return BuildConfig(**base)


def assert_same_index(a: Path, b: Path) -> None:
    ia, ib = open_index(a), open_index(b)
    assert np.array_equal(np.asarray(ia.passage_vectors), np.asarray(ib.passage_vectors))
    assert ia.langs == ib.langs and ia.langs
    for lang in ia.langs:
        assert np.array_equal(np.asarray(ia.query_vectors[lang]), np.asarray(ib.query_vectors[lang]))
        assert np.array_equal(ia.query_counts[lang], ib.query_counts[lang])
    assert [ia.generated(i) for i in range(ia.size)] == [ib.generated(i) for i in range(ib.size)]
    ma = {k: v for k, v in ia.manifest.items() if k not in TIMING_FIELDS}
    mb = {k: v for k, v in ib.manifest.items() if k not in TIMING_FIELDS}
    assert ma == mb


@pytest.fixture(scope="module")
def local_build(tmp_path_factory, corpus_file, tiny_encoder_dir, tiny_generator_dir) -> Path:
    out = tmp_path_factory.mktemp("local") / "index"
    build_index(_config(corpus_file, out, tiny_encoder_dir, tiny_generator_dir))
    return out


def _no_local_models(monkeypatch) -> None:
    """The driver must load no model: Ray workers (other processes) do the work."""
    import xqg_tui.index.builder as builder

    def forbidden(*a, **k):
        raise AssertionError("a model was loaded in the driver")

    monkeypatch.setattr(builder, "load_encoder", forbidden)
    monkeypatch.setattr(builder, "load_generator", forbidden)


def test_ray_build_equals_local_build(ray_session, tmp_path, monkeypatch, local_build, corpus_file, tiny_encoder_dir, tiny_generator_dir):
    _no_local_models(monkeypatch)
    out = tmp_path / "ray"
    res = build_index(_config(corpus_file, out, tiny_encoder_dir, tiny_generator_dir, engine="ray", ray_actors=2))
    assert res.model_calls["encoder"] > 0 and res.model_calls["generator"] > 0, "the work ran on Ray"
    assert not (out / "work").exists()
    assert_same_index(out, local_build)


def test_killed_ray_build_resumes(ray_session, tmp_path, local_build, corpus_file, tiny_encoder_dir, tiny_generator_dir):
    out = tmp_path / "ray"
    cfg = _config(corpus_file, out, tiny_encoder_dir, tiny_generator_dir, engine="ray", ray_actors=1)
    cancel = threading.Event()

    def progress(ev) -> None:
        if ev.stage == "ray" and ev.done >= 1:
            cancel.set()  # stop after the first saved chunk, as a kill would

    with pytest.raises(BuildCancelled):
        build_index(cfg, progress=progress, cancel=cancel)
    saved = [p for p in (out / "work").rglob("0*.*") if p.suffix in (".npy", ".json")]
    assert saved and not (out / "manifest.json").exists()
    res = build_index(cfg)
    assert res.model_calls["encoder"] + res.model_calls["generator"] < 3 + 6 + 6, "saved chunks are not computed again"
    assert_same_index(out, local_build)


def test_ray_shard_of_an_import_build_equals_local(ray_session, tmp_path, monkeypatch, corpus_file, tiny_corpus, tiny_encoder_dir):
    """One shard, with imported queries (file in another order): query encoding runs on Ray too."""
    gen_file = tmp_path / "gen.jsonl"
    rows = [{"docid": p.docid, "generated_queries": {"ru": ["вопрос про город"] * (1 + i % 3), "ko": ["질문"]}}
            for i, p in enumerate(tiny_corpus[:12])]
    gen_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in reversed(rows)), encoding="utf-8")
    local = tmp_path / "local"
    kw = dict(langs=None, import_generated=gen_file, shard="1/2")
    build_index(_config(corpus_file, local, tiny_encoder_dir, None, **kw))
    _no_local_models(monkeypatch)
    out = tmp_path / "ray"
    res = build_index(_config(corpus_file, out, tiny_encoder_dir, None, engine="ray", ray_actors=1, **kw))
    assert res.model_calls["encoder"] > 0 and res.model_calls["generator"] == 0
    assert_same_index(out, local)
    assert open_index(out).manifest["shard"] == {"index": 1, "count": 2, "corpus_sha256": open_index(local).manifest["inputs"]["corpus"]["sha256"], "corpus_passages": 12}


def test_missing_ray_is_one_line(tmp_path, monkeypatch, capsys, corpus_file, tiny_encoder_dir):
    from xqg_tui.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    code = main(["build", "--corpus", str(corpus_file), "--out", str(tmp_path / "x"), "--encoder", str(tiny_encoder_dir),
                 "--engine", "ray", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "pip install 'xqg-tui[ray]'" in err
    with pytest.raises(XQGError, match="need --engine ray"):
        from xqg_tui.cli import build_parser

        args = build_parser().parse_args(["build", "--corpus", str(corpus_file), "--out", str(tmp_path / "y"), "--num-gpus", "1"])
        args.func(args)


def test_worker_errors_are_one_line(ray_session, tmp_path, corpus_file, capsys):
    """A mistake only a Ray worker sees (its model cannot load) is the same one-line error."""
    from xqg_tui.cli import main

    code = main(["build", "--corpus", str(corpus_file), "--out", str(tmp_path / "x"), "--encoder", str(tmp_path / "nope"),
                 "--engine", "ray", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("xqg: error:") and "nope" in err
    assert not (tmp_path / "x" / "manifest.json").exists()
