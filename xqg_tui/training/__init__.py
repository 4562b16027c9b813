"""Trainers. ``encoder.py``: contrastive fine-tuning of the dense encoder
(``xqg train encoder``); other trainers plug into ``xqg train`` through
``cli.OPTIONAL``."""
from __future__ import annotations

__all__ = ["TrainConfig", "TrainExample", "TrainResult", "read_training_file", "train_encoder", "write_training_file"]


def __getattr__(name: str):
    # Lazy: importing the package must not import torch (the CLI builds its parser from it).
    if name in __all__:
        from . import encoder

        return getattr(encoder, name)
    raise AttributeError(name)
