"""A stand-in for the demo generator while its trained weights are not available.

Same architecture as ``xqg train generator`` builds (``xqg_tui/training/generator.py``):
a transformers ``EncoderDecoderModel`` whose encoder is the first 6 layers of the
offline multilingual-e5-small and whose decoder is a 4-layer ``BertLMHeadModel``
(hidden 384, 12 heads, FFN 1536, cross-attention, 128 positions) with the
encoder's word embeddings tied to its 250,037-way output layer; output ids outside
the vocabulary of the demo's training questions get the same blocking bias as the
trained model. Decoder weights are random (seeded), so the queries are gibberish
and rarely end before ``max_new_tokens``: every row runs the full length, the
worst case for both the batched generator and the plain loop.

Built in memory (nothing is written), wrapped in :class:`QueryGenerator`.
"""
from __future__ import annotations

import json
from typing import Any

import torch

from .common import log

BLOCKED_BIAS = -10000.0


def _allowed_ids(tokenizer: Any) -> torch.Tensor:
    from xqg_tui.paths import demo_dir

    ids: set[int] = {tokenizer.bos_token_id or 0, tokenizer.eos_token_id or 2}
    d = demo_dir()
    files = [d / "queries.train.jsonl"] if (d / "queries.train.jsonl").exists() else sorted(
        (d / "parts").glob("part*.queries.train.jsonl"))
    texts = []
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                texts.append(str(row.get("question") or row.get("text") or ""))
    if texts:
        for seq in tokenizer(texts, add_special_tokens=False)["input_ids"]:
            ids.update(seq)
    return torch.tensor(sorted(ids), dtype=torch.long)


def _no_init(make):
    """``make()`` without transformers' weight initialisation (it would redo the random
    decoder and reset the output bias)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older transformers
        return make()
    with no_init_weights():
        return make()


def _random_decoder(cls, config, seed: int):
    """``cls(config)`` with seeded N(0, 0.02) weights, LayerNorms 1/0, biases 0; the word
    embeddings are left for the caller (skipping transformers' own init of the 250k x 384
    matrix saves seconds)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older transformers
        torch.manual_seed(seed)
        return cls(config)
    with no_init_weights():
        model = cls(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "word_embeddings" in name:
                continue
            if "LayerNorm.weight" in name:
                p.fill_(1.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    model.tie_weights()
    return model


def build_standin_generator(seed: int = 0, max_new_tokens: int = 64, batch_size: int = 16, top_k: int = 10):
    """(QueryGenerator, description) with the demo generator's architecture and random decoder weights."""
    from transformers import AutoConfig, BertConfig, BertLMHeadModel, BertModel, EncoderDecoderModel, GenerationConfig

    from xqg_tui.models.encoder import quiet_transformers
    from xqg_tui.models.generator import QueryGenerator
    from xqg_tui.models.offline import prepare_offline_encoder
    from transformers import AutoTokenizer

    folder = prepare_offline_encoder()
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        encoder = BertModel.from_pretrained(str(folder), num_hidden_layers=6, add_pooling_layer=False,
                                            dtype=torch.float32)
    enc_cfg = AutoConfig.from_pretrained(str(folder))
    bos, eos, pad = tokenizer.bos_token_id or 0, tokenizer.eos_token_id or 2, tokenizer.pad_token_id or 1
    dec_cfg = BertConfig(
        vocab_size=enc_cfg.vocab_size, hidden_size=enc_cfg.hidden_size, num_hidden_layers=4,
        num_attention_heads=enc_cfg.num_attention_heads, intermediate_size=enc_cfg.intermediate_size,
        hidden_act=enc_cfg.hidden_act, max_position_embeddings=128, type_vocab_size=enc_cfg.type_vocab_size,
        layer_norm_eps=enc_cfg.layer_norm_eps, pad_token_id=pad, bos_token_id=bos, eos_token_id=eos,
        is_decoder=True, add_cross_attention=True, tie_word_embeddings=True,
    )
    decoder = _random_decoder(BertLMHeadModel, dec_cfg, seed)
    model = _no_init(lambda: EncoderDecoderModel(encoder=encoder, decoder=decoder))
    decoder = model.decoder
    with torch.no_grad():
        decoder.bert.embeddings.word_embeddings.weight.copy_(encoder.embeddings.word_embeddings.weight)
        allowed = _allowed_ids(tokenizer)
        bias = torch.full((enc_cfg.vocab_size,), BLOCKED_BIAS)
        bias[allowed] = 0.0
        decoder.cls.predictions.bias.copy_(bias)
    model.config.decoder_start_token_id = bos
    model.config.eos_token_id = eos
    model.config.pad_token_id = pad
    model.generation_config = GenerationConfig(decoder_start_token_id=bos, eos_token_id=eos, pad_token_id=pad,
                                               bos_token_id=bos)
    model.eval()
    # Ours gets what QueryGenerator.load does to a checkpoint (output layer restricted to
    # the ids its bias allows, when the engine has that speed-up); the plain loop keeps
    # the model as built.
    ours_model = model
    try:
        import copy

        from xqg_tui.models.demo_generator import restrict_output_layer

        ours_model = copy.deepcopy(model)
        if not restrict_output_layer(ours_model):
            ours_model = model
    except ImportError:
        pass
    gen = QueryGenerator(ours_model, tokenizer, model_id="standin-demo-architecture", source="benchmarks.standin",
                         top_k=top_k, max_new_tokens=max_new_tokens, batch_size=batch_size)
    gen.plain_model = model
    desc = (f"stand-in with the demo generator's architecture (6-layer offline E5 encoder + random 4-layer BERT "
            f"decoder d=384, 250k-way tied output, {len(allowed)} ids allowed)")
    log(f"generate: built {desc}")
    return gen, desc


def load_generator(max_new_tokens: int = 64, batch_size: int = 16, top_k: int = 10):
    """The real demo generator when it can be loaded, else the stand-in: (generator, description, is_real)."""
    import os

    from xqg_tui.errors import XQGError

    if os.environ.get("XQG_BENCH_GENERATOR", "").strip().lower() == "standin":
        gen, desc = build_standin_generator(max_new_tokens=max_new_tokens, batch_size=batch_size, top_k=top_k)
        return gen, desc, False
    try:
        from xqg_tui.models.generator import QueryGenerator

        gen = QueryGenerator.load("demo", max_new_tokens=max_new_tokens, batch_size=batch_size, top_k=top_k,
                                  threads=torch.get_num_threads())
        return gen, "the demo generator (--generator demo)", True
    except (XQGError, ImportError, OSError) as exc:
        log(f"generate: demo generator not available ({type(exc).__name__}: {exc}); using the stand-in")
    gen, desc = build_standin_generator(max_new_tokens=max_new_tokens, batch_size=batch_size, top_k=top_k)
    return gen, desc, False
