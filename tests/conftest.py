"""Shared fixtures: tiny models built in the test session (no hub, no downloads).

* ``tiny_encoder_dir``: a 2-layer BERT (hidden 32) with a WordPiece vocabulary trained
  on multilingual lines; plain folder (CLS pooling, no prefixes by convention).
* ``tiny_e5_encoder_dir``: the same weights with an ``"xqg"`` section in config.json
  (mean pooling, normalized, ``query: ``/``passage: `` prefixes), like the offline encoder.
* ``tiny_generator_dir``: a 2-layer mT5 (d_model 32) with a SentencePiece unigram
  vocabulary trained on the same lines, saved as a T5 fast tokenizer.
* ``tiny_corpus``: 20 English passages.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

# Before anything imports huggingface_hub: it reads these once, at import time.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models on a shared 2-core machine: one torch thread (read by Encoder/QueryGenerator.load).
os.environ.setdefault("XQG_THREADS", "1")

import pytest  # noqa: E402

from xqg_tui.types import Passage  # noqa: E402

_WORDS: dict[str, list[str]] = {
    "en": "the city river museum was founded in by king population capital university language history war "
    "when who what where how many is largest first built year people island mountain church bridge".split(),
    "ar": "ما هي عاصمة مصر متى تأسست المدينة من هو ملك أكبر نهر في العالم كم عدد السكان جامعة تاريخ "
    "الحرب اللغة أول جزيرة جبل".split(),
    "bn": "বাংলাদেশের রাজধানী কোথায় কে প্রথম রাজা নদী শহর কত সালে প্রতিষ্ঠিত বিশ্ববিদ্যালয় ইতিহাস "
    "জনসংখ্যা যুদ্ধ ভাষা সবচেয়ে বড় দ্বীপ পাহাড়".split(),
    "fi": "mikä on suomen pääkaupunki milloin kaupunki perustettiin kuka oli kuningas joki yliopisto "
    "historia väkiluku sota kieli suurin ensimmäinen saari vuori kirkko silta".split(),
    "ja": "日本 の 首都 は どこ です か 東京 大学 いつ 設立 された 川 王 人口 歴史 誰 最も 大きい 都市 "
    "戦争 言語 島 山 教会 橋".split(),
    "ko": "한국의 수도는 어디입니까 서울 대학교 언제 설립 되었나요 강 왕 인구 역사 누가 가장 큰 도시 "
    "전쟁 언어 섬 산 교회 다리".split(),
    "ru": "какая столица россии когда был основан город кто король река университет история население "
    "война язык самый большой первый остров гора церковь мост".split(),
    "te": "భారతదేశ రాజధాని ఏది ఎప్పుడు స్థాపించబడింది నగరం ఎవరు రాజు నది విశ్వవిద్యాలయం చరిత్ర జనాభా "
    "యుద్ధం భాష అతిపెద్ద మొదటి ద్వీపం పర్వతం".split(),
}

_PROMPT_WORDS = "Generate a Arabic Bengali Finnish Japanese Korean Russian Telugu English question for this passage:"


def multilingual_lines(count: int = 320, seed: int = 0) -> list[str]:
    """Deterministic pseudo-sentences in the 7 paper languages + English (and the
    prompt words), enough to train small vocabularies covering every script."""
    rng = random.Random(seed)
    langs = sorted(_WORDS)
    lines = [" ".join(words) for words in _WORDS.values()] + [_PROMPT_WORDS] * 3
    while len(lines) < count:
        words = _WORDS[langs[len(lines) % len(langs)]]
        sep = "" if langs[len(lines) % len(langs)] == "ja" and rng.random() < 0.5 else " "
        lines.append(sep.join(rng.choice(words) for _ in range(rng.randint(4, 12))) + rng.choice(["?", ".", ""]))
    return lines


def deterministic_wordpiece_vocab(lines: list[str], words: int = 400) -> dict[str, int]:
    """A WordPiece vocabulary from ``lines``: the specials, every character (alone and as
    a ``##`` continuation) and the most frequent whole words. ``tokenizers``' trainer
    breaks ties differently from run to run, which made every model built on it (and
    the tests that train one) vary between runs; this one is the same every time."""
    import string
    import unicodedata
    from collections import Counter

    def pieces(line: str) -> list[str]:  # BERT's basic split: whitespace, then punctuation
        out: list[str] = []
        for word in line.split():
            cur = ""
            for ch in word:
                if unicodedata.category(ch).startswith("P"):
                    out += [cur, ch] if cur else [ch]
                    cur = ""
                else:
                    cur += ch
            if cur:
                out.append(cur)
        return out

    counts = Counter(w for line in lines for w in pieces(line))
    chars = sorted({ch for w in counts for ch in w} | set(string.ascii_letters + string.digits))
    top = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))[:words]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars] + top
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}


def build_tiny_encoder(folder: Path, lines: list[str]) -> Path:
    """2-layer BERT, hidden 32, a deterministic WordPiece vocab from ``lines``; safetensors."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from xqg_tui.models.encoder import quiet_transformers

    tokenizer = BertTokenizer(vocab=deterministic_wordpiece_vocab(lines), do_lower_case=False, strip_accents=False)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False)
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
    return folder


def build_tiny_generator(folder: Path, lines: list[str], work: Path) -> Path:
    """2-layer mT5, d_model 32, SentencePiece unigram vocab (pad 0, eos 1, unk 2 as in
    mT5) trained on ``lines`` and wrapped as a T5 fast tokenizer; safetensors."""
    import sentencepiece as spm
    import torch
    from transformers import MT5Config, MT5ForConditionalGeneration, T5Tokenizer

    from xqg_tui.models.encoder import quiet_transformers

    work.mkdir(parents=True, exist_ok=True)
    text_file = work / "lines.txt"
    text_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    prefix = work / "spm"
    spm.SentencePieceTrainer.train(
        input=str(text_file),
        model_prefix=str(prefix),
        vocab_size=700,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        normalization_rule_name="identity",
        minloglevel=2,
    )
    processor = spm.SentencePieceProcessor(model_file=str(prefix) + ".model")
    vocab = [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]
    vocab[0] = ("<pad>", 0.0)
    vocab[1] = ("</s>", 0.0)
    vocab[2] = ("<unk>", 0.0)
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    config = MT5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    torch.manual_seed(0)
    model = MT5ForConditionalGeneration(config)
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
    return folder


def build_tiny_encoder_decoder(folder: Path, tokenizer_dir: Path) -> Path:
    """A BERT2BERT ``EncoderDecoderModel`` (what the demo generator is) with the tiny
    encoder's WordPiece tokenizer; decoding starts at [CLS] and stops at [SEP]."""
    import torch
    from transformers import AutoTokenizer, BertConfig, EncoderDecoderConfig, EncoderDecoderModel

    from xqg_tui.models.encoder import quiet_transformers

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    common = dict(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, pad_token_id=tokenizer.pad_token_id)
    config = EncoderDecoderConfig.from_encoder_decoder_configs(
        BertConfig(**common), BertConfig(**common, is_decoder=True, add_cross_attention=True)
    )
    config.decoder_start_token_id = tokenizer.cls_token_id
    config.eos_token_id = tokenizer.sep_token_id
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(0)
    model = EncoderDecoderModel(config=config)
    model.generation_config.decoder_start_token_id = tokenizer.cls_token_id
    model.generation_config.eos_token_id = tokenizer.sep_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_lines() -> list[str]:
    return multilingual_lines()


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory, tiny_lines: list[str]) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder") / "model", tiny_lines)


@pytest.fixture(scope="session")
def tiny_e5_encoder_dir(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("tiny-e5") / "model"
    shutil.copytree(tiny_encoder_dir, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["xqg"] = {"pooling": "mean", "normalize": True, "query_prefix": "query: ", "passage_prefix": "passage: "}
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_generator_dir(tmp_path_factory: pytest.TempPathFactory, tiny_lines: list[str]) -> Path:
    root = tmp_path_factory.mktemp("tiny-generator")
    return build_tiny_generator(root / "model", tiny_lines, root / "spm")


@pytest.fixture(scope="session")
def tiny_encdec_generator_dir(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> Path:
    return build_tiny_encoder_decoder(tmp_path_factory.mktemp("tiny-encdec") / "model", tiny_encoder_dir)


_CORPUS = [
    ("Helsinki", "Helsinki is the capital and most populous city of Finland, on the shore of the Gulf of Finland."),
    ("Tokyo", "Tokyo is the capital of Japan and one of the most populous metropolitan areas in the world."),
    ("Seoul", "Seoul is the capital of South Korea; the Han River runs through the city."),
    ("Moscow", "Moscow is the capital of Russia and was first mentioned in chronicles in 1147."),
    ("Cairo", "Cairo, the capital of Egypt, lies on the Nile and is the largest city in the Arab world."),
    ("Dhaka", "Dhaka is the capital of Bangladesh, on the eastern banks of the Buriganga River."),
    ("Hyderabad", "Hyderabad is the capital of Telangana, a state where Telugu is the main language."),
    ("Nile", "The Nile is a major river in northeastern Africa that flows into the Mediterranean Sea."),
    ("Mount Fuji", "Mount Fuji is the highest mountain in Japan, an active volcano last erupting in 1707."),
    ("Sibelius", "Jean Sibelius was a Finnish composer; his Finlandia became a symbol of national identity."),
    ("Hangul", "Hangul is the Korean alphabet, created in 1443 under King Sejong the Great."),
    ("Tolstoy", "Leo Tolstoy wrote War and Peace, a novel about Russian society during the Napoleonic wars."),
    ("Rabindranath Tagore", "Tagore wrote in Bengali and won the Nobel Prize in Literature in 1913."),
    ("Sauna", "The sauna is a small room heated to high temperatures, a central part of Finnish culture."),
    ("Kimchi", "Kimchi is a traditional Korean side dish of salted and fermented vegetables."),
    ("Trans-Siberian Railway", "The Trans-Siberian Railway connects Moscow with Vladivostok on the Pacific."),
    ("Pyramids of Giza", "The pyramids of Giza were built as tombs for pharaohs about 4,500 years ago."),
    ("Shinkansen", "The Shinkansen is a network of high-speed railway lines in Japan opened in 1964."),
    ("", "A passage without a title: the Telugu language is spoken by about 83 million people."),
    ("Lake Saimaa", "Saimaa is the largest lake in Finland and home to the endangered Saimaa ringed seal."),
]


@pytest.fixture(scope="session")
def tiny_corpus() -> list[Passage]:
    """20 short English passages (docids d01..d20); one has an empty title."""
    return [Passage(docid=f"d{i + 1:02d}", title=title, text=text) for i, (title, text) in enumerate(_CORPUS)]
