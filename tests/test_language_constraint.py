"""The per-language decoding constraint (``language_tokens.json``) and trainer resume:
token sets are derived from each language's training targets and scripts, exported and
assembled with the demo generator, applied by ``QueryGenerator`` when the model folder
has them (off on request, absent for other models), and a stopped training run
continues from its checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from xqg_tui.errors import ModelError  # noqa: E402
from xqg_tui.models.generator import LanguageTokenConstraint, QueryGenerator, read_language_tokens  # noqa: E402
from xqg_tui.training.generator import (  # noqa: E402
    LANGUAGE_TOKENS_FILE,
    Pair,
    TrainConfig,
    export_assets,
    language_token_sets,
    token_scripts,
    train_generator,
)
from xqg_tui.types import Passage  # noqa: E402

from test_train_generator import make_tiny_data  # noqa: E402


def test_token_scripts() -> None:
    assert token_scripts("\u2581서울") == {"HANGUL"}
    assert token_scripts("の") == {"HIRAGANA"}
    assert token_scripts("東京") == {"CJK"}
    assert token_scripts("\u25812015") == set()
    assert token_scripts("?") == set()
    assert token_scripts("ా") == {"TELUGU"}  # a vowel sign alone still belongs to its script
    assert token_scripts("\u2581Nokia") == {"LATIN"}


class _Tok:
    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def convert_ids_to_tokens(self, i: int) -> str:
        return self.pieces[i]


def test_language_token_sets_keep_own_script_latin_and_digits() -> None:
    pieces = ["</s>", "\u2581서울", "の", "\u2581Seoul", "\u25812015", "?", "\u2581東京", "\u2581москва", "」"]
    tok = _Tok(pieces)
    pairs = [Pair(0, "x", "demo", "ko"), Pair(0, "x", "demo", "ja"), Pair(0, "x", "demo", "fi")]
    # the Korean targets contain a Japanese token and a Cyrillic one (noise): both are left out
    tgt = [[1, 2, 3, 4, 5, 7, 8, 0], [2, 6, 4, 8, 0], [3, 7, 0]]
    sets = language_token_sets(pairs, tgt, tok, allowed=list(range(1, len(pieces))), eos=0)
    assert set(sets["ko"]) == {0, 1, 3, 4, 5, 8}  # Hangul, Latin name, digits, ?, seen 」, eos
    assert 2 not in sets["ko"] and 7 not in sets["ko"]
    assert {2, 6, 4, 8}.issubset(sets["ja"]) and 1 not in sets["ja"]
    assert set(sets["fi"]) == {0, 3, 4, 5}  # Latin seen in fi targets + ASCII digits/punctuation; no Cyrillic


def test_constraint_masks_per_row() -> None:
    tokens = {"ko": [0, 2], "ja": [1, 3]}
    c = LanguageTokenConstraint(tokens, ["ko", "ja", "xx"])
    scores = torch.zeros((3, 5))
    out = c(torch.zeros((3, 1), dtype=torch.long), scores)
    assert torch.isfinite(out[0]).tolist() == [True, False, True, False, False]
    assert torch.isfinite(out[1]).tolist() == [False, True, False, True, False]
    assert torch.isfinite(out[2]).all()  # a language without a list is left alone


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> dict:
    root = tmp_path_factory.mktemp("lang-constraint")
    demo, data = make_tiny_data(root)
    logs: list[str] = []
    cfg = TrainConfig(out_dir=str(root / "train"), data_dir=str(data), demo_dir=str(demo), xquad_langs=("ru",),
                      encoder_layers=2, decoder_layers=1, max_steps=1, threads=1, warmup_steps=1,
                      batch_tokens=200, checkpoint_minutes=100)
    out = train_generator(cfg, log=logs.append, encoder_folder=tiny_encoder_dir)
    return {"root": root, "out": out, "cfg": cfg, "logs": logs}


def test_trainer_writes_language_tokens_and_export_ships_them(trained: dict, tiny_encoder_dir: Path) -> None:
    out = trained["out"]
    sets = read_language_tokens(out / LANGUAGE_TOKENS_FILE)
    assert set(sets) == {"ar", "bn", "fi", "ja", "ko", "ru", "te"}
    assets = export_assets(out, trained["root"] / "assets", encoder_folder=tiny_encoder_dir)
    manifest = json.loads((assets / "manifest.json").read_text())
    assert LANGUAGE_TOKENS_FILE in manifest["files"]
    assert read_language_tokens(assets / LANGUAGE_TOKENS_FILE) == sets


def test_generator_applies_the_constraint(trained: dict, tmp_path: Path, tiny_encoder_dir: Path) -> None:
    from xqg_tui.models.demo_generator import prepare_demo_generator

    assets = export_assets(trained["out"], tmp_path / "assets", encoder_folder=tiny_encoder_dir)
    folder = prepare_demo_generator(cache_dir=tmp_path / "cache", assets_dir=assets, encoder_dir=tiny_encoder_dir)
    assert (folder / LANGUAGE_TOKENS_FILE).is_file()
    gen = QueryGenerator.load(str(folder), max_new_tokens=6)
    assert gen.language_tokens is not None
    assert "language_constraint" in gen.fingerprint()
    seen: list[torch.Tensor] = []
    decode = gen.tokenizer.batch_decode

    def capture(ids, **kw):  # type: ignore[no-untyped-def]
        seen.append(ids.clone())
        return decode(ids, **kw)

    gen.tokenizer.batch_decode = capture
    passages = [Passage("d1", "Cairo", "Cairo is the capital of Egypt."), Passage("d2", "Oslo", "Oslo is in Norway.")]
    special = {gen.tokenizer.pad_token_id, gen.model.generation_config.decoder_start_token_id}
    for lang in ("ko", "fi"):
        seen.clear()
        res = gen.generate(passages, [lang], n=3, seed=1)
        assert all(len(r[lang]) == 3 for r in res)
        ids = set(torch.cat([x.flatten() for x in seen]).tolist())
        assert ids <= set(gen.language_tokens[lang]) | special, lang
    off = QueryGenerator.load(str(folder), max_new_tokens=6, language_constraint=False)
    assert off.language_tokens is None and "language_constraint" not in off.fingerprint()


def test_constraint_required_but_missing_is_an_error(tiny_encdec_generator_dir: Path) -> None:
    gen = QueryGenerator.load(str(tiny_encdec_generator_dir), max_new_tokens=3)
    assert gen.language_tokens is None  # models without the file (e.g. mT5) are unconstrained
    with pytest.raises(ModelError, match="language"):
        QueryGenerator.load(str(tiny_encdec_generator_dir), max_new_tokens=3, language_constraint=True)


def test_resume_continues_from_checkpoint(trained: dict, tiny_encoder_dir: Path) -> None:
    import dataclasses

    out = trained["out"]
    assert (out / "optimizer.safetensors").is_file()
    logs: list[str] = []
    cfg = dataclasses.replace(trained["cfg"], max_steps=3, resume=True, xquad_repeat=2)
    train_generator(cfg, log=logs.append, encoder_folder=tiny_encoder_dir)
    state = json.loads((out / "train_state.json").read_text())
    assert state["step"] == 3 and state["resumed_from_step"] == 1
    assert any("resumed optimizer state" in m for m in logs)
    assert any("resumed from" in m for m in logs)


def test_copy_bias_boosts_passage_names_and_numbers() -> None:
    from xqg_tui.models.generator import SourceCopyBias

    c = SourceCopyBias([[1, 3], []], 2.0)
    scores = torch.zeros((2, 5))
    scores[0, 3] = float("-inf")  # blocked by the language constraint: stays blocked
    out = c(torch.zeros((2, 1), dtype=torch.long), scores)
    assert out[0].tolist() == [0.0, 2.0, 0.0, float("-inf"), 0.0]
    assert out[1].tolist() == [0.0] * 5


def test_copy_candidates_are_names_and_numbers(tiny_encoder_dir: Path) -> None:
    from transformers import AutoTokenizer

    from xqg_tui.models.generator import copy_candidate_ids

    tok = AutoTokenizer.from_pretrained(str(tiny_encoder_dir))
    ids = copy_candidate_ids(tok, "Cairo", "The city of Cairo was founded in 969 and the river is long.")
    pieces = set(tok.convert_ids_to_tokens(ids))
    assert not pieces & set(tok.convert_ids_to_tokens(tok("The city river long", add_special_tokens=False)["input_ids"]))
    assert ids  # Cairo / 969


def test_head_temperature_divides_logits(trained: dict, tmp_path: Path, tiny_encoder_dir: Path) -> None:
    from safetensors.torch import load_file

    a = load_file(str(export_assets(trained["out"], tmp_path / "a", encoder_folder=tiny_encoder_dir) / "decoder.safetensors"))
    b = load_file(str(export_assets(trained["out"], tmp_path / "b", encoder_folder=tiny_encoder_dir, temperature=2.0,
                                    copy_bias=1.5) / "decoder.safetensors"))
    for key in ("cls.predictions.transform.LayerNorm.weight", "xqg.allowed_bias"):
        assert torch.allclose(b[key].float() * 2.0, a[key].float(), atol=1e-2)
    assert torch.equal(a["cls.predictions.transform.dense.weight"], b["cls.predictions.transform.dense.weight"])
    meta = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert meta["head_temperature"] == 2.0
    assert json.loads((tmp_path / "b" / LANGUAGE_TOKENS_FILE).read_text())["decoding"]["copy_bias"] == 1.5


def test_optimizer_state_round_trips_through_safetensors(tmp_path: Path) -> None:
    """The trainer's optimizer state is saved without pickle and restores exactly."""
    from xqg_tui.training.generator import load_optimizer_state, save_optimizer_state

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(5, 4)).sum().backward()
        opt.step()
    path = tmp_path / "optimizer.safetensors"
    save_optimizer_state(opt, 7, path)
    step, state = load_optimizer_state(path)
    assert step == 7
    fresh = torch.optim.AdamW(torch.nn.Linear(4, 3).parameters(), lr=5.0)
    fresh.load_state_dict(state)
    want, got = opt.state_dict(), fresh.state_dict()
    assert got["param_groups"] == want["param_groups"]
    for pid, entry in want["state"].items():
        for name, value in entry.items():
            assert torch.equal(got["state"][pid][name], value), (pid, name)
    assert [p.name for p in tmp_path.iterdir()] == ["optimizer.safetensors"]  # no temporary file left


def test_unreadable_optimizer_state_resumes_with_a_fresh_one(trained: dict, tiny_encoder_dir: Path, tmp_path: Path) -> None:
    import dataclasses
    import shutil

    out = tmp_path / "run"
    shutil.copytree(trained["out"], out)
    (out / "optimizer.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    logs: list[str] = []
    cfg = dataclasses.replace(trained["cfg"], out_dir=str(out), max_steps=int(json.loads((out / "train_state.json").read_text())["step"]) + 1,
                              resume=True)
    train_generator(cfg, log=logs.append, encoder_folder=tiny_encoder_dir)
    assert any("cannot be read" in m and "fresh optimizer state" in m for m in logs), logs
    assert not any("resumed optimizer state" in m for m in logs)
