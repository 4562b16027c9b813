"""prepare_demo_generator: assembles a standard, loadable model folder from the
shipped decoder assets + an encoder folder (here tiny stand-ins), re-assembles when an
asset changes, and refuses corrupted or foreign assets with a clear error."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")

from xqg_tui.errors import ModelError  # noqa: E402
from xqg_tui.models.demo_generator import (  # noqa: E402
    MARKER_FILE,
    check_assets,
    demo_assets_dir,
    prepare_demo_generator,
)
from xqg_tui.training.generator import TrainConfig, export_assets, train_generator  # noqa: E402

from test_train_generator import make_tiny_data  # noqa: E402


@pytest.fixture(scope="module")
def tiny_assets(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("demo-gen")
    demo, _ = make_tiny_data(root)
    cfg = TrainConfig(out_dir=str(root / "train"), data_dir=None, demo_dir=str(demo), encoder_layers=2,
                      decoder_layers=1, max_steps=1, threads=1, warmup_steps=1, batch_tokens=200,
                      checkpoint_minutes=100)
    out = train_generator(cfg, log=lambda m: None, encoder_folder=tiny_encoder_dir)
    return export_assets(out, root / "assets", encoder_folder=tiny_encoder_dir)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_assembles_loadable_folder_and_caches(tiny_assets: Path, tmp_path: Path, tiny_encoder_dir: Path) -> None:
    from transformers import AutoModelForSeq2SeqLM

    from xqg_tui.models.generator import QueryGenerator
    from xqg_tui.types import Passage

    cache = tmp_path / "cache"
    folder = prepare_demo_generator(cache_dir=cache, assets_dir=tiny_assets, encoder_dir=tiny_encoder_dir)
    for name in ("config.json", "generation_config.json", "model.safetensors", MARKER_FILE):
        assert (folder / name).is_file(), name
    assert not list(folder.parent.glob(".demo-generator.*"))  # no temp folder left
    marker = json.loads((folder / MARKER_FILE).read_text())
    manifest = json.loads((tiny_assets / "manifest.json").read_text())
    assert marker["assets"] == manifest["files"]
    model = AutoModelForSeq2SeqLM.from_pretrained(str(folder))
    assert model.config.decoder_start_token_id is not None
    gen = QueryGenerator.load(str(folder), max_new_tokens=5)
    res = gen.generate([Passage("d1", "Cairo", "Cairo is the capital of Egypt.")], ["ru"], n=3, seed=1)
    assert len(res[0]["ru"]) == 3
    # current -> not rebuilt
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    assert prepare_demo_generator(cache_dir=cache, assets_dir=tiny_assets, encoder_dir=tiny_encoder_dir) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime


def test_changed_asset_triggers_reassembly(tiny_assets: Path, tmp_path: Path, tiny_encoder_dir: Path) -> None:
    import hashlib

    from safetensors.torch import load_file, save_file

    assets = _copy(tiny_assets, tmp_path / "assets")
    cache = tmp_path / "cache"
    folder = prepare_demo_generator(cache_dir=cache, assets_dir=assets, encoder_dir=tiny_encoder_dir)
    before = json.loads((folder / MARKER_FILE).read_text())
    weights = load_file(str(assets / "decoder.safetensors"))
    key = next(k for k in weights if k.endswith("LayerNorm.bias"))
    weights[key] = weights[key] + 0.5
    save_file(weights, str(assets / "decoder.safetensors"), metadata={"format": "pt", "xqg": "demo-generator-decoder"})
    manifest = json.loads((assets / "manifest.json").read_text())
    manifest["files"]["decoder.safetensors"] = hashlib.sha256((assets / "decoder.safetensors").read_bytes()).hexdigest()
    (assets / "manifest.json").write_text(json.dumps(manifest))
    folder2 = prepare_demo_generator(cache_dir=cache, assets_dir=assets, encoder_dir=tiny_encoder_dir)
    after = json.loads((folder2 / MARKER_FILE).read_text())
    assert folder2 == folder and after != before
    assert after["assets"]["decoder.safetensors"] == manifest["files"]["decoder.safetensors"]


def test_corrupted_asset_is_refused(tiny_assets: Path, tmp_path: Path, tiny_encoder_dir: Path) -> None:
    assets = _copy(tiny_assets, tmp_path / "assets")
    data = bytearray((assets / "decoder.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (assets / "decoder.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupted"):
        prepare_demo_generator(cache_dir=tmp_path / "cache", assets_dir=assets, encoder_dir=tiny_encoder_dir)
    assert not (tmp_path / "cache" / "models" / "demo-generator").exists()


def test_missing_asset_is_refused(tiny_assets: Path, tmp_path: Path, tiny_encoder_dir: Path) -> None:
    assets = _copy(tiny_assets, tmp_path / "assets")
    (assets / "config.json").unlink()
    with pytest.raises(ModelError, match="missing"):
        prepare_demo_generator(cache_dir=tmp_path / "cache", assets_dir=assets, encoder_dir=tiny_encoder_dir)


def test_foreign_assets_are_refused(tiny_assets: Path, tmp_path: Path, tiny_encoder_dir: Path) -> None:
    import hashlib

    import torch
    from safetensors.torch import save_file

    # a foreign manifest
    assets = _copy(tiny_assets, tmp_path / "a1")
    manifest = json.loads((assets / "manifest.json").read_text())
    (assets / "manifest.json").write_text(json.dumps({**manifest, "kind": "something else"}))
    with pytest.raises(ModelError, match="not a demo-generator manifest"):
        check_assets(assets)
    # a foreign safetensors file with a consistent checksum
    assets = _copy(tiny_assets, tmp_path / "a2")
    save_file({"weight": torch.zeros(3)}, str(assets / "decoder.safetensors"))
    manifest["files"]["decoder.safetensors"] = hashlib.sha256((assets / "decoder.safetensors").read_bytes()).hexdigest()
    (assets / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="not a demo-generator decoder"):
        prepare_demo_generator(cache_dir=tmp_path / "cache", assets_dir=assets, encoder_dir=tiny_encoder_dir)
    # not JSON at all
    assets = _copy(tiny_assets, tmp_path / "a3")
    (assets / "manifest.json").write_text("<html>")
    with pytest.raises(ModelError, match="unreadable"):
        check_assets(assets)


def test_assets_for_another_encoder_are_refused(tiny_assets: Path, tmp_path: Path, tiny_e5_encoder_dir: Path,
                                                tiny_encoder_dir: Path) -> None:
    # same tiny weights but a different hidden size in config -> clear error, nothing written
    enc = _copy(tiny_encoder_dir, tmp_path / "enc")
    cfg = json.loads((enc / "config.json").read_text())
    cfg["vocab_size"] = cfg["vocab_size"] + 7
    (enc / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="expects an encoder"):
        prepare_demo_generator(cache_dir=tmp_path / "cache", assets_dir=tiny_assets, encoder_dir=enc)
    assert not (tmp_path / "cache" / "models" / "demo-generator").exists()


def test_bundled_assets_are_valid_and_small() -> None:
    assets = demo_assets_dir()
    if not (assets / "manifest.json").is_file():
        pytest.skip("no bundled demo generator assets")
    manifest = check_assets(assets)
    total = sum(p.stat().st_size for p in assets.iterdir() if p.is_file())
    assert total <= 40 * 1024 * 1024
    assert manifest["encoder"]["vocab_size"] == 250037


def test_restricted_output_layer_generates_the_same(tiny_assets: Path, tmp_path: Path, tiny_encoder_dir: Path) -> None:
    from xqg_tui.models.demo_generator import restrict_output_layer
    from xqg_tui.models.generator import QueryGenerator
    from xqg_tui.types import Passage

    folder = prepare_demo_generator(cache_dir=tmp_path / "cache", assets_dir=tiny_assets, encoder_dir=tiny_encoder_dir)
    passages = [Passage("d1", "Cairo", "Cairo is the capital of Egypt."), Passage("d2", "", "Tokyo is big.")]
    gen = QueryGenerator.load(str(folder), max_new_tokens=6)  # load() restricts the head
    head = gen.model.decoder.cls.predictions
    assert hasattr(head.decoder, "allowed"), "QueryGenerator.load restricts a mostly-blocked head"
    restricted = gen.generate(passages, ["ja", "ru"], n=3, seed=2)
    kept = restrict_output_layer(gen.model)  # idempotent
    assert 0 < kept < gen.model.config.decoder.vocab_size
    head.decoder = head.decoder.original[0]  # back to the full output layer
    assert gen.generate(passages, ["ja", "ru"], n=3, seed=2) == restricted
