"""The bundled demo query generator, assembled into a standard model folder on first use.

``assets/demo-generator/`` ships only what the offline encoder does not already
provide (trained by ``xqg train generator``, see :mod:`xqg_tui.training.generator`):

* ``decoder.safetensors`` (float16): the decoder (a ``BertLMHeadModel``) without its
  word embeddings: layers, position/type embeddings, the head transform, and the
  allowed output ids (``xqg.allowed_ids``) with their output bias (``xqg.allowed_bias``);
* ``config.json``: the ``EncoderDecoderModel`` config (encoder = the first layers of
  the offline encoder);
* ``language_tokens.json`` (optional): per language, the output ids a query in that
  language may use; :class:`xqg_tui.models.generator.QueryGenerator` applies it as a
  decoding constraint when the model folder has it (copied there on assembly);
* ``manifest.json``: the sha256 of these files and how they were trained.

:func:`prepare_demo_generator` writes ``<cache>/models/demo-generator``: a plain
transformers ``EncoderDecoderModel`` folder (``config.json``, ``generation_config.json``,
``model.safetensors`` in float16, the offline encoder's tokenizer files). The encoder
and the decoder's word embeddings (tied to its output layer) are copied from the
offline encoder; ``cls.predictions.bias`` is the shipped bias on the allowed ids and
:data:`BLOCKED_BIAS` everywhere else, so the model never emits a token that did not
occur in its training targets. ``AutoModelForSeq2SeqLM.from_pretrained(folder)`` loads
it like any checkpoint. The folder is written to a temporary sibling and renamed into
place; ``xqg_demo_generator.json`` records the sha256s of the assets and the encoder's
identity, so a changed asset or encoder triggers re-assembly.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from xqg_tui.errors import ModelError

MODEL_DIR_NAME = "demo-generator"
MARKER_FILE = "xqg_demo_generator.json"
ASSEMBLY_FORMAT = 1
ASSET_KIND = "xqg-tui demo generator decoder"
ASSET_FILES = ("decoder.safetensors", "config.json")
OPTIONAL_ASSET_FILES = ("language_tokens.json",)  # checked and copied when the manifest lists them
BLOCKED_BIAS = -10000.0
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "sentencepiece.bpe.model", "spiece.model")

__all__ = ["prepare_demo_generator", "demo_assets_dir", "demo_generator_dir", "check_assets", "ASSET_FILES"]


def demo_assets_dir() -> Path:
    from xqg_tui.paths import assets_dir

    return assets_dir() / "demo-generator"


def demo_generator_dir(cache_dir: Path | None = None) -> Path:
    from xqg_tui.models.offline import cache_root

    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return root / "models" / MODEL_DIR_NAME


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_assets(assets: Path) -> dict[str, Any]:
    """Validate the shipped files against their manifest; returns the manifest.

    Raises :class:`ModelError` naming the problem for a missing, corrupted (checksum)
    or foreign (not a demo-generator decoder) asset."""
    assets = Path(assets)
    hint = "reinstall xqg-tui, or re-create the assets with `xqg train generator --export`"
    try:
        manifest = json.loads((assets / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"the demo generator's assets are missing ({assets / 'manifest.json'})", hint=hint) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"the demo generator's manifest {assets / 'manifest.json'} is unreadable ({exc})",
                         hint=hint) from None
    if not isinstance(manifest, dict) or manifest.get("kind") != ASSET_KIND or manifest.get("format") != 1:
        raise ModelError(f"{assets / 'manifest.json'} is not a demo-generator manifest (foreign or newer asset)",
                         hint=hint)
    files = manifest.get("files") or {}
    for name in ASSET_FILES + tuple(n for n in OPTIONAL_ASSET_FILES if n in files):
        path = assets / name
        if not path.is_file():
            raise ModelError(f"the demo generator asset {path} is missing", hint=hint)
        if files.get(name) != _sha256(path):
            raise ModelError(
                f"the demo generator asset {path} is corrupted or was replaced (sha256 differs from manifest.json)",
                hint=hint,
            )
    try:
        from safetensors import safe_open

        with safe_open(str(assets / "decoder.safetensors"), "pt") as f:
            meta = f.metadata() or {}
            keys = set(f.keys())
    except Exception as exc:  # safetensors raises its own error types
        raise ModelError(f"{assets / 'decoder.safetensors'} is not a readable safetensors file ({exc})",
                         hint=hint) from None
    if meta.get("xqg") != "demo-generator-decoder" or not {"xqg.allowed_ids", "xqg.allowed_bias"} <= keys:
        raise ModelError(f"{assets / 'decoder.safetensors'} is not a demo-generator decoder (foreign file)", hint=hint)
    return manifest


def _encoder_identity(encoder_dir: Path) -> dict[str, Any]:
    weights = encoder_dir / "model.safetensors"
    st = weights.stat()
    ident: dict[str, Any] = {"folder": str(encoder_dir), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    marker = encoder_dir / "xqg_conversion.json"
    if marker.is_file():
        ident["conversion_sha256"] = _sha256(marker)
    return ident


def _is_current(folder: Path, wanted: dict[str, Any]) -> bool:
    try:
        marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        return False
    return marker == wanted


def assemble(assets: Path, encoder_dir: Path, dest: Path) -> Path:
    """Write the complete model folder into ``dest`` (which must not exist)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import AutoConfig, EncoderDecoderConfig, EncoderDecoderModel, GenerationConfig

    from xqg_tui.models.encoder import quiet_transformers

    config = EncoderDecoderConfig.from_pretrained(str(assets))
    enc_cfg = AutoConfig.from_pretrained(str(encoder_dir))
    if (enc_cfg.vocab_size, enc_cfg.hidden_size) != (config.decoder.vocab_size, config.decoder.hidden_size):
        raise ModelError(
            f"the demo generator asset expects an encoder with vocabulary {config.decoder.vocab_size} and hidden size "
            f"{config.decoder.hidden_size}, but {encoder_dir} has {enc_cfg.vocab_size}/{enc_cfg.hidden_size}",
            hint="prepare the offline encoder again (`xqg models prepare`) or reinstall xqg-tui",
        )
    decoder = load_file(str(assets / "decoder.safetensors"))
    allowed = decoder.pop("xqg.allowed_ids").long()
    allowed_bias = decoder.pop("xqg.allowed_bias").float()
    state: dict[str, torch.Tensor] = {}
    n_layers = config.encoder.num_hidden_layers
    with safe_open(str(encoder_dir / "model.safetensors"), "pt") as f:
        for key in f.keys():
            name = key[5:] if key.startswith("bert.") else key
            if name.startswith("pooler."):
                continue
            if name.startswith("encoder.layer."):
                if int(name.split(".")[2]) >= n_layers:
                    continue
            state["encoder." + name] = f.get_tensor(key).float()
            if name == "embeddings.word_embeddings.weight":
                state["decoder.bert.embeddings.word_embeddings.weight"] = state["encoder." + name]
    for key, value in decoder.items():
        state["decoder." + key] = value.float()
    bias = torch.full((config.decoder.vocab_size,), BLOCKED_BIAS, dtype=torch.float32)
    bias[allowed] = allowed_bias
    state["decoder.cls.predictions.bias"] = bias
    with quiet_transformers():
        model = EncoderDecoderModel(config=config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if "position_ids" not in k and not k.endswith("cls.predictions.decoder.weight")
               and not k.endswith("cls.predictions.decoder.bias") and not k.startswith("encoder.pooler.")]
    if missing or unexpected:
        raise ModelError(
            f"the demo generator assets do not fit the encoder in {encoder_dir} "
            f"(missing {missing[:2]}, unexpected {unexpected[:2]})",
            hint="reinstall xqg-tui or re-export the assets",
        )
    pooler = getattr(model.encoder, "pooler", None)
    if pooler is not None:  # the class always builds a pooler; generation never uses it
        with torch.no_grad():
            for param in pooler.parameters():
                param.zero_()
    model.decoder.tie_weights()
    with torch.no_grad():  # tie_weights in some versions leaves the linear's own bias
        model.decoder.cls.predictions.decoder.bias = model.decoder.cls.predictions.bias
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id, eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    model.half()
    dest.mkdir(parents=True)
    with quiet_transformers():
        model.save_pretrained(str(dest), safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (encoder_dir / name).is_file():
            shutil.copy2(encoder_dir / name, dest / name)
    try:
        listed = json.loads((assets / "manifest.json").read_text(encoding="utf-8")).get("files") or {}
    except (OSError, ValueError):
        listed = {}
    for name in OPTIONAL_ASSET_FILES:
        if name in listed and (assets / name).is_file():
            shutil.copy2(assets / name, dest / name)
    # the weights are stored in float16 but the model is run in float32 on CPU
    cfg = json.loads((dest / "config.json").read_text(encoding="utf-8"))
    cfg["dtype"] = "float32"
    (dest / "config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    (dest / "README.md").write_text(
        "xqg-tui demo query generator, assembled from assets/demo-generator and the offline encoder\n"
        "(multilingual-e5-small). See assets/demo-generator/MODEL_CARD.md.\n", encoding="utf-8")
    return dest


def prepare_demo_generator(
    force: bool = False,
    cache_dir: Path | None = None,
    assets_dir: Path | None = None,
    encoder_dir: Path | None = None,
) -> Path:
    """The assembled demo generator folder, (re)built when missing or stale.

    ``cache_dir``: the xqg-tui cache root (default ``$XQG_CACHE_DIR`` or the platform
    user cache); ``assets_dir``: the shipped files (default ``assets/demo-generator``);
    ``encoder_dir``: the encoder folder to take the encoder and embeddings from
    (default: the offline encoder, converted first when needed)."""
    assets = Path(assets_dir) if assets_dir is not None else demo_assets_dir()
    manifest = check_assets(assets)
    if encoder_dir is None:
        from xqg_tui.models.offline import prepare_offline_encoder

        encoder_dir = prepare_offline_encoder(cache_dir=cache_dir)
    encoder_dir = Path(encoder_dir)
    final = demo_generator_dir(cache_dir)
    wanted = {
        "format": ASSEMBLY_FORMAT,
        "assets": {name: manifest["files"][name] for name in ASSET_FILES + OPTIONAL_ASSET_FILES
                   if name in manifest["files"]},
        "encoder": _encoder_identity(encoder_dir),
    }
    if not force and _is_current(final, wanted):
        return final
    parent = final.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the model cache {parent}: {exc.strerror or exc}") from None
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = parent / f".{MODEL_DIR_NAME}.tmp-{tag}"
    try:
        assemble(assets, encoder_dir, tmp)
        (tmp / MARKER_FILE).write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
        old = None
        if final.exists():
            old = parent / f".{MODEL_DIR_NAME}.old-{tag}"
            try:
                final.rename(old)
            except FileNotFoundError:
                old = None
        try:
            tmp.rename(final)  # the commit point
        except OSError:
            if _is_current(final, wanted):  # another process finished first
                return final
            if old is not None and not final.exists():
                old.rename(final)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise ModelError(f"cannot write the demo generator to {parent}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


class _RestrictedOutput:
    """Stand-in for the decoder's output ``nn.Linear``: computes the logits of the
    allowed ids only and writes :data:`BLOCKED_BIAS` elsewhere. The allowed ids get
    the same value as the full layer (up to float rounding); blocked ids, which the
    full layer scores about ``BLOCKED_BIAS`` (never sampled), get exactly it."""

    def __new__(cls, linear: Any, allowed: Any) -> Any:
        import torch
        import torch.nn.functional as F

        class RestrictedOutput(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.out_features = linear.out_features
                self.in_features = linear.in_features
                self.register_buffer("allowed", allowed.clone())
                self.original = [linear]  # a list: not registered as a submodule
                self.register_buffer("weight_allowed", linear.weight.detach()[allowed].clone())
                self.register_buffer("bias_allowed", linear.bias.detach()[allowed].clone())

            def forward(self, hidden: torch.Tensor) -> torch.Tensor:
                out = hidden.new_full(hidden.shape[:-1] + (self.out_features,), BLOCKED_BIAS)
                out[..., self.allowed] = F.linear(hidden, self.weight_allowed, self.bias_allowed)
                return out

        return RestrictedOutput()


def restrict_output_layer(model: Any) -> int:
    """Speed up generation with a model whose ``cls.predictions.bias`` blocks most of
    the vocabulary (like the demo generator): the output matmul is done over the
    allowed rows only (250,037 -> ~12k for the demo generator, about 20x fewer
    multiply-adds per step). Returns the number of allowed ids (0 = left unchanged).
    In-memory only; the saved model is not touched."""
    decoder = getattr(model, "decoder", model)
    head = getattr(getattr(decoder, "cls", None), "predictions", None)
    if head is None or not hasattr(head, "bias"):
        return 0
    if hasattr(head.decoder, "allowed"):  # already restricted
        return int(len(head.decoder.allowed))
    allowed = (head.bias.detach() > BLOCKED_BIAS / 2).nonzero().flatten()
    if len(allowed) == 0 or len(allowed) > 0.5 * head.bias.numel():
        return 0
    head.decoder = _RestrictedOutput(head.decoder, allowed)
    return int(len(allowed))
