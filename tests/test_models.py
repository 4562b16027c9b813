"""Encoder, generator and registry on the tiny models of conftest.py."""
from __future__ import annotations

import json
import math
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from xqg_tui.errors import ModelError, XQGError
from xqg_tui.models import registry
from xqg_tui.models.encoder import Encoder, fingerprint_mismatches, pool, read_conventions
from xqg_tui.models.generator import QueryGenerator, RowSampler, build_prompt, row_seed
from xqg_tui.types import Passage

TEXTS = [
    "What is the capital of Finland?",
    "",
    "日本の首都はどこですか",
    "Кто был первым королём",
    "a",
    "Helsinki is the capital and most populous city of Finland, on the shore of the Gulf of Finland.",
    "ما هي عاصمة مصر",
]


@pytest.fixture(scope="module")
def encoder(tiny_encoder_dir: Path) -> Encoder:
    return Encoder.load(str(tiny_encoder_dir), device="cpu")


@pytest.fixture(scope="module")
def generator(tiny_generator_dir: Path) -> QueryGenerator:
    return QueryGenerator.load(str(tiny_generator_dir), device="cpu", max_new_tokens=6, batch_size=4)


def _hidden(enc: Encoder, text: str) -> torch.Tensor:
    """Last hidden states of one unpadded text, computed without the Encoder's code."""
    batch = enc.tokenizer([text], return_tensors="pt", truncation=True, max_length=enc.max_query_length)
    with torch.inference_mode():
        return enc.model(**batch).last_hidden_state[0]


# ---------------------------------------------------------------- encoder


def test_defaults_for_plain_folder(encoder: Encoder, tiny_encoder_dir: Path) -> None:
    assert encoder.pooling == "cls" and encoder.normalize is False
    assert encoder.query_prefix == "" and encoder.passage_prefix == ""
    assert encoder.dim == 32
    assert encoder.model_id == str(tiny_encoder_dir)
    assert Path(encoder.source) == tiny_encoder_dir.resolve()


def test_cls_and_mean_pooling_match_manual_computation(tiny_encoder_dir: Path) -> None:
    cls_enc = Encoder.load(str(tiny_encoder_dir), device="cpu", pooling="cls")
    mean_enc = Encoder.load(str(tiny_encoder_dir), device="cpu", pooling="mean")
    text = "Helsinki is the capital of Finland"
    hidden = _hidden(cls_enc, text)
    got_cls = cls_enc.encode_queries([text])[0]
    got_mean = mean_enc.encode_queries([text])[0]
    np.testing.assert_allclose(got_cls, hidden[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(got_mean, hidden.mean(dim=0).numpy(), atol=1e-5)
    assert not np.allclose(got_cls, got_mean, atol=1e-3)


def test_mean_pooling_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert torch.allclose(pool(hidden, mask, "mean"), torch.tensor([[2.0, 3.0], [7.0, 8.0]]))
    assert torch.allclose(pool(hidden, mask, "cls"), torch.tensor([[1.0, 2.0], [5.0, 6.0]]))
    with pytest.raises(ModelError):
        pool(hidden, mask, "max")


def test_xqg_section_conventions_and_prefixes(tiny_e5_encoder_dir: Path, tiny_encoder_dir: Path) -> None:
    e5 = Encoder.load(str(tiny_e5_encoder_dir), device="cpu")
    assert (e5.pooling, e5.normalize, e5.query_prefix, e5.passage_prefix) == ("mean", True, "query: ", "passage: ")
    vectors = e5.encode_queries(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the prefix is really prepended: same as a prefix-less encoder given "query: ..." by hand
    plain = Encoder.load(str(tiny_encoder_dir), device="cpu", pooling="mean", normalize=True)
    np.testing.assert_allclose(e5.encode_queries(["abc"]), plain.encode_queries(["query: abc"]), atol=1e-5)
    np.testing.assert_allclose(
        e5.encode_passages([Passage("x", "", "abc")]), plain.encode_queries(["passage: abc"]), atol=1e-5
    )
    assert not np.allclose(e5.encode_queries(["abc"]), plain.encode_queries(["abc"]), atol=1e-4)


def test_explicit_arguments_override_folder(tiny_e5_encoder_dir: Path) -> None:
    enc = Encoder.load(str(tiny_e5_encoder_dir), device="cpu", pooling="cls", query_prefix="", normalize=False)
    assert (enc.pooling, enc.query_prefix, enc.normalize, enc.passage_prefix) == ("cls", "", False, "passage: ")


def test_sentence_transformers_files(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "st"
    shutil.copytree(tiny_encoder_dir, folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True})
    )
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "q: ", "passage": "p: "}, "default_prompt_name": None})
    )
    assert read_conventions(folder) == {"normalize": True, "pooling": "mean", "query_prefix": "q: ", "passage_prefix": "p: "}
    enc = Encoder.load(str(folder), device="cpu")
    assert (enc.pooling, enc.normalize, enc.query_prefix, enc.passage_prefix) == ("mean", True, "q: ", "p: ")
    # an xqg section wins over the sentence-transformers files
    config = json.loads((folder / "config.json").read_text())
    config["xqg"] = {"pooling": "cls"}
    (folder / "config.json").write_text(json.dumps(config))
    assert read_conventions(folder)["pooling"] == "cls"
    assert read_conventions(folder)["query_prefix"] == "q: "


def test_e5_family_defaults_by_name(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "intfloat" / "tiny-e5-small"
    shutil.copytree(tiny_encoder_dir, folder)
    enc = Encoder.load(str(folder), device="cpu")
    assert (enc.pooling, enc.normalize, enc.query_prefix, enc.passage_prefix) == ("mean", True, "query: ", "passage: ")


def test_length_sorted_batching_keeps_order(encoder: Encoder) -> None:
    before = encoder.calls
    batched = encoder.encode_queries(TEXTS, batch_size=3)
    assert encoder.calls - before == math.ceil(len(TEXTS) / 3)
    singles = np.stack([encoder.encode_queries([t], batch_size=1)[0] for t in TEXTS])
    assert encoder.calls - before == math.ceil(len(TEXTS) / 3) + len(TEXTS)
    assert batched.dtype == np.float32 and batched.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(batched, singles, atol=1e-5)
    # rows are really different texts (an order mix-up would be visible)
    assert not np.allclose(batched[0], batched[2], atol=1e-3)


def test_passage_formatting(encoder: Encoder, tiny_encoder_dir: Path) -> None:
    titled = Passage("d1", "Helsinki", "is the capital of Finland")
    got = encoder.encode_passages([titled, ("Helsinki", "is the capital of Finland"), Passage("d2", " ", "only text")])
    manual = encoder.encode_queries(["Helsinki is the capital of Finland", "only text"])
    np.testing.assert_allclose(got[0], manual[0], atol=1e-5)
    np.testing.assert_allclose(got[1], manual[0], atol=1e-5)
    np.testing.assert_allclose(got[2], manual[1], atol=1e-5)
    pair = Encoder.load(str(tiny_encoder_dir), device="cpu", passage_template="pair")
    assert not np.allclose(pair.encode_passages([titled])[0], got[0], atol=1e-4)
    with pytest.raises(ModelError):
        Encoder.load(str(tiny_encoder_dir), device="cpu", passage_template="{title}")


def test_empty_and_very_long_inputs(encoder: Encoder) -> None:
    empty = encoder.encode_queries([""])
    assert empty.shape == (1, 32) and np.isfinite(empty).all()
    long = "Helsinki is the capital of Finland " * 400
    vectors = encoder.encode_passages([long, long + " and a different ending"])
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)  # both truncated to 128 tokens
    # asking for more tokens than the 512 positions is clamped, not a crash
    roomy = Encoder.load(str(encoder.folder), device="cpu", max_passage_length=5000)
    assert np.isfinite(roomy.encode_passages([long])).all()
    before = encoder.calls
    nothing = encoder.encode_queries([])
    assert nothing.shape == (0, 32) and encoder.calls == before


def test_progress_reports_all_items(encoder: Encoder) -> None:
    seen: list[tuple[int, int]] = []
    encoder.encode_queries(TEXTS, batch_size=2, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(TEXTS), len(TEXTS))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 4


def test_fingerprint(encoder: Encoder, tiny_encoder_dir: Path, tiny_e5_encoder_dir: Path) -> None:
    fp = encoder.fingerprint()
    for key in ("model_id", "weights_sha256", "weights_bytes", "pooling", "normalize", "query_prefix",
                "passage_prefix", "max_query_length", "max_passage_length", "dim"):
        assert key in fp
    json.dumps(fp)  # goes into manifest.json
    again = Encoder.load(str(tiny_encoder_dir), device="cpu").fingerprint()
    assert again == fp and fingerprint_mismatches(fp, again) == []
    e5 = Encoder.load(str(tiny_e5_encoder_dir), device="cpu").fingerprint()
    assert e5["weights_sha256"] == fp["weights_sha256"]  # same weights, other conventions
    problems = fingerprint_mismatches(fp, e5)
    assert any(p.startswith("pooling") for p in problems) and any(p.startswith("query_prefix") for p in problems)


# ---------------------------------------------------------------- generator


def test_prompt_is_exact() -> None:
    assert build_prompt("ja", "Tokyo", "Tokyo is big.") == (
        "Generate a Japanese question for this passage: Tokyo Tokyo is big."
    )
    assert build_prompt(" ar", "", "Cairo.") == "Generate a Arabic question for this passage: Cairo."
    assert build_prompt("te", "  ", "x") == "Generate a Telugu question for this passage: x"
    with pytest.raises(XQGError, match="unknown language"):
        build_prompt("xx", "", "text")


def test_generation_shape_and_calls(generator: QueryGenerator, tiny_corpus: list[Passage]) -> None:
    passages = tiny_corpus[:3]
    before = generator.calls
    out = generator.generate(passages, ["ja", "ar", "fi"], n=2, seed=1)
    assert generator.calls - before == math.ceil(3 * 3 / generator.batch_size)
    assert len(out) == 3
    for item in out:
        assert list(item) == ["ja", "ar", "fi"]
        for queries in item.values():
            assert len(queries) == 2 and all(isinstance(q, str) and q == q.strip() for q in queries)
    before = generator.calls
    assert generator.generate(passages, [], n=2) == [{}, {}, {}]
    assert generator.generate(passages, ["ja"], n=0) == [{"ja": []}] * 3
    assert generator.calls == before


def test_generation_is_deterministic(generator: QueryGenerator, tiny_corpus: list[Passage]) -> None:
    passages = tiny_corpus[:4]
    first = generator.generate(passages, ["ja", "ru"], n=3, seed=7, chunk_key="c0")
    again = generator.generate(passages, ["ja", "ru"], n=3, seed=7, chunk_key="c0")
    other_seed = generator.generate(passages, ["ja", "ru"], n=3, seed=8, chunk_key="c0")
    other_chunk = generator.generate(passages, ["ja", "ru"], n=3, seed=7, chunk_key="c1")
    assert first == again
    assert first != other_seed
    assert first != other_chunk
    # the n samples of one prompt are separate draws
    assert any(len(set(item["ja"])) > 1 for item in first)


def test_queries_do_not_depend_on_batch_or_language_order(
    generator: QueryGenerator, tiny_generator_dir: Path, tiny_corpus: list[Passage]
) -> None:
    together = generator.generate(tiny_corpus[:5], ["ja", "ko"], n=2, seed=3)
    alone = generator.generate([tiny_corpus[2]], ["ko", "ja"], n=2, seed=3)
    assert alone[0] == together[2]
    bigger = QueryGenerator.load(str(tiny_generator_dir), device="cpu", max_new_tokens=6, batch_size=16)
    assert bigger.generate(tiny_corpus[:5], ["ja", "ko"], n=2, seed=3) == together


def test_row_sampler_draws_from_top_k() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0, 5.0, -1.0, 3.0]])
    rows = 4000
    seeds = np.array([row_seed(0, "", f"d{i}", "ja", 0) for i in range(rows)], dtype=np.uint64)
    scores = logits.repeat(rows, 1)
    ids = torch.zeros((rows, 1), dtype=torch.long)
    out = RowSampler(seeds, top_k=3, top_p=None, temperature=1.0)(ids, scores.clone())
    assert torch.isfinite(out).sum(dim=1).eq(1).all()  # exactly one token per row survives
    picked = out.argmax(dim=1).numpy()
    assert set(picked.tolist()) <= {3, 5, 0}  # the 3 most likely tokens
    expected = torch.softmax(torch.tensor([5.0, 3.0, 2.0]), dim=0).numpy()
    freq = np.array([(picked == t).mean() for t in (3, 5, 0)])
    np.testing.assert_allclose(freq, expected, atol=0.03)
    # top_p small enough keeps only the most likely token; the next step draws anew
    greedy = RowSampler(seeds, top_k=3, top_p=0.5, temperature=1.0)(ids, scores.clone())
    assert greedy.argmax(dim=1).eq(3).all()
    next_step = RowSampler(seeds, top_k=3, top_p=None, temperature=1.0)(
        torch.zeros((rows, 2), dtype=torch.long), scores.clone()
    )
    assert not torch.equal(next_step.argmax(dim=1), out.argmax(dim=1))


def test_encoder_decoder_generator(tiny_encdec_generator_dir: Path, tiny_corpus: list[Passage]) -> None:
    gen = QueryGenerator.load(str(tiny_encdec_generator_dir), device="cpu", max_new_tokens=5)
    out = gen.generate(tiny_corpus[:2], ["fi"], n=2, seed=0)
    assert out == gen.generate(tiny_corpus[:2], ["fi"], n=2, seed=0)
    assert all(len(item["fi"]) == 2 for item in out)
    assert gen.fingerprint()["architecture"] == "encoder-decoder"


def test_generator_fingerprint(generator: QueryGenerator) -> None:
    fp = generator.fingerprint()
    assert fp["top_k"] == 10 and fp["max_new_tokens"] == 6 and len(fp["weights_sha256"]) == 64
    assert "{language}" in fp["prompt"]
    json.dumps(fp)


# ---------------------------------------------------------------- registry and errors


def test_resolve_names() -> None:
    assert registry.resolve_encoder("paper") == registry.PAPER_ENCODER
    assert registry.resolve_generator("paper") == registry.PAPER_GENERATOR
    assert registry.resolve_generator("none") is None and registry.resolve_generator(None) is None
    assert registry.resolve_encoder("someone/some-model") == "someone/some-model"


def test_uncached_hub_id_fails_fast_with_next_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "hub_reachable", lambda timeout=1.0: pytest.fail("probed the network"))
    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        Encoder.load("xqg-test-nobody/no-such-model-123")
    assert time.monotonic() - start < 5
    message = info.value.one_line()
    assert "cannot be downloaded: no network" in message and "--encoder offline" in message
    with pytest.raises(ModelError, match="--generator demo"):
        QueryGenerator.load("xqg-test-nobody/no-such-generator")


def test_bad_folders_raise_model_error(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        Encoder.load(str(tmp_path / "missing" / "model"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        Encoder.load(str(empty))
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_encoder_dir, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(ModelError, match="pickled"):
        Encoder.load(str(pickled))
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ModelError, match="is a file"):
        Encoder.load(str(a_file))


def test_unknown_architecture_and_missing_weights(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    from safetensors.torch import save_file

    alien = tmp_path / "alien"
    shutil.copytree(tiny_encoder_dir, alien)
    config = json.loads((alien / "config.json").read_text())
    config["model_type"] = "my-custom-arch"
    config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (alien / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="remote code"):
        Encoder.load(str(alien))
    hollow = tmp_path / "hollow"
    shutil.copytree(tiny_encoder_dir, hollow)
    save_file({"unrelated.weight": torch.zeros(2, 2)}, str(hollow / "model.safetensors"))
    with pytest.raises(ModelError, match="missing"):
        Encoder.load(str(hollow))


def test_encoder_given_as_generator(tiny_encoder_dir: Path) -> None:
    with pytest.raises(ModelError) as info:
        QueryGenerator.load(str(tiny_encoder_dir))
    assert "not a sequence-to-sequence" in str(info.value) and "--generator demo" in str(info.value)
    with pytest.raises(ModelError):
        QueryGenerator.load("none")


def test_missing_optional_modules_give_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xqg_tui.models.demo_generator", None)  # import -> ImportError
    monkeypatch.setitem(sys.modules, "xqg_tui.models.offline", None)
    with pytest.raises(ModelError, match="demo generator"):
        registry.resolve_generator("demo")
    with pytest.raises(ModelError, match="offline encoder"):
        registry.resolve_encoder("offline")


def test_default_encoder_and_listing_stay_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "hub_reachable", lambda timeout=1.0: pytest.fail("probed the network"))
    assert registry.env_offline()
    assert registry.default_encoder_spec() == "offline"
    rows = registry.list_models()
    assert {(r["kind"], r["name"]) for r in rows} >= {
        ("encoder", "offline"), ("encoder", "paper"), ("generator", "demo"), ("generator", "paper"),
        ("generator", "none"),
    }
    for row in rows:
        assert set(row) == {"name", "kind", "spec", "available_offline", "where", "note"}
        assert isinstance(row["available_offline"], bool)
    paper = next(r for r in rows if r["kind"] == "encoder" and r["name"] == "paper")
    assert paper["available_offline"] is False  # nothing cached in the test environment


def test_no_remote_code_or_pickles_in_package() -> None:
    root = Path(__file__).resolve().parents[1] / "xqg_tui"
    banned = re.compile(
        r"trust_remote_code\s*[=:]\s*True|[\"']trust_remote_code[\"']\s*:\s*True|allow_pickle\s*=\s*True"
        r"|use_safetensors\s*=\s*False|pickle\.loads?\("
    )
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for path in sorted(root.rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if banned.search(line)
    ]
    assert offenders == []
    assert any(root.rglob("*.py"))
