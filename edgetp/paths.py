"""Where edgetp keeps data it makes: the default offline corpus and feature caches.

``EDGETP_HOME`` (default ``~/.cache/edgetp``) holds ``kws-synth/`` (the espeak-ng corpus
that `./setup.sh` generates, GSC layout) and ``features/`` (memory-mapped caches).
"""
from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("EDGETP_HOME", Path.home() / ".cache" / "edgetp")).expanduser()


def default_data_root() -> Path:
    return home() / "kws-synth"


def cache_dir() -> Path:
    return home() / "features"
