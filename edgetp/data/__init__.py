"""Keyword-spotting and neuromorphic data.

- ``labels``: label sets (paper 36, common 12) and GSC's hash split rule;
- ``gsc``: reader of a GSC v2-layout corpus (``load_corpus`` -> ``Corpus``);
- ``splits``: the paper's speaker-adaptation split (``speaker_split``, ``speakers_by_count``);
- ``synth`` (+ ``espeak``, ``noise``): the offline espeak-ng corpus (``synth_kws``);
- ``cache``: memory-mapped feature cache (``cached_features``);
- ``neuromorphic``: SHD and N-MNIST through tonic, local files only.

Generated data lives under :func:`data_home` (``$EDGETP_DATA``, a checkout's ``data/``,
or ``~/.cache/edgetp``): the default corpus in ``kws-synth/``, features in ``feature-cache/``.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "EDGETP_DATA"


def data_home() -> Path:
    """Where edgetp keeps generated data: ``$EDGETP_DATA`` if set; in a source checkout
    its ``data/`` folder (git-ignored); else ``~/.cache/edgetp``."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "edgetp").is_dir():
        return checkout / "data"
    return Path.home() / ".cache" / "edgetp"


def default_corpus_dir() -> Path:
    """The default offline corpus (``edgetp data prepare-default`` writes it)."""
    return data_home() / "kws-synth"


def default_cache_dir() -> Path:
    """The default feature cache."""
    return data_home() / "feature-cache"
