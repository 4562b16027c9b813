"""The demo generator trainer (``xqg train generator``) on tiny data and a tiny encoder:
a couple of steps run, checkpoints and assets are written, the evaluation queries are
never read, and the exported assets assemble into a loadable standard model."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from xqg_tui.training.generator import (  # noqa: E402
    TrainConfig,
    collect_pairs,
    export_assets,
    query_in_language,
    train_generator,
)

PASSAGES = [
    ("d1", "Helsinki", "Helsinki is the capital and most populous city of Finland."),
    ("d2", "Tokyo", "Tokyo is the capital of Japan and one of the largest cities in the world."),
    ("d3", "Cairo", "Cairo is the capital of Egypt and lies on the river Nile."),
]
QUESTIONS = {
    "ja": "日本 の 首都 は どこ です か", "fi": "mikä on suomen pääkaupunki", "ru": "какая столица россии",
    "ar": "ما هي عاصمة مصر", "ko": "한국의 수도는 어디입니까", "bn": "বাংলাদেশের রাজধানী কোথায়",
    "te": "భారతదేశ రాజధాని ఏది",
}


def make_tiny_data(root: Path) -> tuple[Path, Path]:
    demo = root / "demo"
    demo.mkdir(parents=True)
    with open(demo / "corpus.jsonl", "w", encoding="utf-8") as f:
        for docid, title, text in PASSAGES:
            f.write(json.dumps({"docid": docid, "title": title, "text": text}) + "\n")
    with open(demo / "queries.train.jsonl", "w", encoding="utf-8") as f:
        for i, (docid, _, _) in enumerate(PASSAGES):
            for lang, q in QUESTIONS.items():
                f.write(json.dumps({"id": f"{docid}-{lang}", "question": q, "answers": [], "lang": lang,
                                    "docid": docid}, ensure_ascii=False) + "\n")
    # must never be read: it is not even valid JSON
    (demo / "queries.eval.jsonl").write_text("{ this is not json\n", encoding="utf-8")
    data = root / "data"
    for lang in ("ja", "fi"):
        folder = data / "xor-tydi" / "translations" / f"{lang}-en"
        folder.mkdir(parents=True)
        (folder / "en.txt").write_text("what is the capital of japan\nwho was the first king\n", encoding="utf-8")
        (folder / f"{lang}.txt").write_text(f"{QUESTIONS[lang]}\n{QUESTIONS[lang]} ?\n", encoding="utf-8")
    xq = data / "xquad"
    xq.mkdir(parents=True)
    for lang, q in (("en", "what is the capital"), ("ru", QUESTIONS["ru"])):
        doc = {"data": [{"title": "Some_title", "paragraphs": [
            {"context": text, "qas": [{"id": f"q{i}", "question": q, "answers": []}]}
            for i, (_, _, text) in enumerate(PASSAGES)]}], "version": "1.1"}
        (xq / f"xquad.{lang}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return demo, data


def tiny_config(tmp: Path, demo: Path, data: Path, **kw) -> TrainConfig:
    base = dict(out_dir=str(tmp / "train"), data_dir=str(data), demo_dir=str(demo), xquad_langs=("ru", "en"),
                encoder_layers=2, decoder_layers=1, max_steps=2, minutes=5, threads=1, warmup_steps=1,
                batch_tokens=200, holdout_every=3, checkpoint_minutes=100)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> dict:
    root = tmp_path_factory.mktemp("gen-train")
    demo, data = make_tiny_data(root)
    cfg = tiny_config(root, demo, data)
    logs: list[str] = []
    out = train_generator(cfg, log=logs.append, encoder_folder=tiny_encoder_dir)
    assets = export_assets(out, root / "assets", encoder_folder=tiny_encoder_dir)
    return {"root": root, "demo": demo, "data": data, "out": out, "assets": assets, "logs": logs, "cfg": cfg}


def test_collect_pairs_mix_and_holdout(tmp_path: Path) -> None:
    demo, data = make_tiny_data(tmp_path)
    prompts, pairs, stats = collect_pairs(tiny_config(tmp_path, demo, data), log=lambda m: None)
    assert stats["demo_pairs"] == 21
    assert stats["translation_pairs"] == 4
    # 3 paragraphs, every 3rd held out -> 2 paragraphs x 2 languages
    assert stats["xquad_pairs"] == 4 and stats["xquad_heldout_paragraphs"] == 1
    assert all(p.startswith("Generate a ") for p in prompts)
    assert any(p.startswith("Generate a Japanese question for this passage: what is") for p in prompts)
    kinds = {p.kind for p in pairs}
    assert kinds == {"demo", "translation", "xquad"}


def test_trainer_runs_steps_and_checkpoints(trained: dict) -> None:
    out = trained["out"]
    state = json.loads((out / "train_state.json").read_text())
    assert state["step"] == 2 and state["final"] is True
    assert math.isfinite(state["loss_ema"])
    assert (out / "decoder.safetensors").is_file()
    assert any("output vocabulary" in m for m in trained["logs"])
    assert any(name.startswith("states-") for name in (p.name for p in out.iterdir()))


def test_second_run_reuses_cached_states(trained: dict, tiny_encoder_dir: Path) -> None:
    cfg = trained["cfg"]
    logs: list[str] = []
    cfg2 = TrainConfig(**{**cfg.__dict__, "out_dir": str(Path(cfg.out_dir).parent / "train2"), "max_steps": 1})
    Path(cfg2.out_dir).mkdir()
    for f in Path(cfg.out_dir).glob("*-*.*"):  # states/offsets/prompts of the first run
        (Path(cfg2.out_dir) / f.name).write_bytes(f.read_bytes())
    train_generator(cfg2, log=logs.append, encoder_folder=tiny_encoder_dir)
    assert any("from cache" in m for m in logs)


def test_export_and_assemble_loadable(trained: dict, tmp_path: Path, tiny_encoder_dir: Path) -> None:
    from transformers import AutoModelForSeq2SeqLM

    from xqg_tui.models.demo_generator import BLOCKED_BIAS, prepare_demo_generator
    from xqg_tui.models.generator import QueryGenerator
    from xqg_tui.types import Passage

    assets = trained["assets"]
    names = sorted(p.name for p in assets.iterdir())
    assert names == ["config.json", "decoder.safetensors", "language_tokens.json", "manifest.json"]
    folder = prepare_demo_generator(cache_dir=tmp_path / "cache", assets_dir=assets, encoder_dir=tiny_encoder_dir)
    assert folder == tmp_path / "cache" / "models" / "demo-generator"
    model = AutoModelForSeq2SeqLM.from_pretrained(str(folder))
    assert type(model).__name__ == "EncoderDecoderModel"
    bias = model.decoder.cls.predictions.bias.detach()
    allowed = (bias > BLOCKED_BIAS / 2).nonzero().flatten()
    assert 0 < len(allowed) < len(bias)
    # output layer tied to the (encoder's) word embeddings
    assert torch.equal(model.decoder.cls.predictions.decoder.weight, model.encoder.embeddings.word_embeddings.weight)
    gen = QueryGenerator.load(str(folder), max_new_tokens=6)
    out = gen.generate([Passage("d1", "Helsinki", "Helsinki is the capital of Finland.")], ["ja", "fi"], n=2, seed=0)
    assert set(out[0]) == {"ja", "fi"} and all(len(v) == 2 for v in out[0].values())
    again = QueryGenerator.load(str(folder), max_new_tokens=6).generate(
        [Passage("d1", "Helsinki", "Helsinki is the capital of Finland.")], ["fi", "ja"], n=2, seed=0)
    assert again[0]["ja"] == out[0]["ja"]


def test_generator_cli_is_discovered() -> None:
    import argparse

    from xqg_tui.training.generator_cli import add_parser

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_parser(sub)
    args = parser.parse_args(["generator", "--out", "x", "--max-steps", "3", "--data-dir", "none"])
    assert args.max_steps == 3 and args.func.__name__ == "cmd_train_generator"
    try:
        from xqg_tui.cli import build_parser
    except ImportError:  # pragma: no cover
        return
    args = build_parser().parse_args(["train", "generator", "--out", "x"])
    assert args.func.__name__ == "cmd_train_generator"


def test_query_in_language_rules() -> None:
    assert query_in_language("東京はどこですか", "ja")
    assert not query_in_language("서울은 어디입니까", "ja")
    assert query_in_language("Какая столица?", "ru")
    assert query_in_language("mikä on Suomen pääkaupunki?", "fi")
    assert not query_in_language("ما هي عاصمة مصر", "fi")
    assert not query_in_language("", "ar")
