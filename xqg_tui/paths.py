"""Where things live: the user cache (models, demo index) and the bundled assets."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """User cache for converted models and the demo index (``XQG_CACHE_DIR`` overrides)."""
    env = os.environ.get("XQG_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("xqg-tui"))


def assets_dir() -> Path:
    """The project's ``assets/`` folder (``XQG_ASSETS_DIR`` overrides)."""
    env = os.environ.get("XQG_ASSETS_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "assets", here / "assets"):
        if candidate.is_dir():
            return candidate
    return here.parent / "assets"


def demo_dir() -> Path:
    return assets_dir() / "demo"
