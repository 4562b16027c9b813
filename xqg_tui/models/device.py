"""Device, dtype and thread choices shared by the encoder and the generator."""
from __future__ import annotations

import os

import torch

from xqg_tui.errors import ModelError

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` = the first CUDA GPU when there is one, else the CPU."""
    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device '{device}' asked for, but no CUDA GPU is available. Use --device cpu or auto")
    if name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ModelError("device 'mps' asked for, but it is not available. Use --device cpu or auto")
    try:
        return torch.device(name)
    except (RuntimeError, ValueError):
        raise ModelError(f"unknown device '{device}'. Use auto, cpu, cuda or cuda:N") from None


def resolve_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    """``None``/``auto`` = float16 on a GPU (halves memory, same rankings in practice),
    float32 on the CPU (float16 matmuls are slow or missing there)."""
    if dtype is None or str(dtype).strip().lower() == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    key = str(dtype).strip().lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise ModelError(f"unknown dtype '{dtype}'. Use float32, float16 or bfloat16")
    return _DTYPES[key]


def configure_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads from ``threads`` or ``$XQG_THREADS``; leave torch's own
    choice (the physical cores) otherwise. Returns the number in force."""
    if threads is None:
        env = os.environ.get("XQG_THREADS", "").strip()
        if env.isdigit() and int(env) > 0:
            threads = int(env)
    if threads is not None and threads > 0 and threads != torch.get_num_threads():
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()
