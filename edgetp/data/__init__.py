"""Keyword-spotting and neuromorphic data.

- ``labels``: label sets (paper 36, common 12) and GSC's hash split rule;
- ``gsc``: reader of a GSC v2-layout corpus (``load_corpus`` -> ``Corpus``);
- ``splits``: the paper's speaker-adaptation split (``speaker_split``, ``speakers_by_count``);
- ``synth`` (+ ``espeak``, ``noise``): the offline espeak-ng corpus (``synth_kws``);
- ``cache``: memory-mapped feature cache (``cached_features``);
- ``neuromorphic``: SHD and N-MNIST through tonic, local files only.

Generated data lives under :func:`data_home` (``$EDGETP_HOME``, default ``~/.cache/edgetp``,
the same folders as ``edgetp.paths``): the default corpus in ``kws-synth/`` (written by
``edgetp data prepare-default``, which ``setup.sh`` runs), features in ``features/``.
"""
from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """``$EDGETP_HOME`` or ``~/.cache/edgetp``."""
    return Path(os.environ.get("EDGETP_HOME", Path.home() / ".cache" / "edgetp")).expanduser()


def default_corpus_dir() -> Path:
    """The default offline corpus."""
    return data_home() / "kws-synth"


def default_cache_dir() -> Path:
    """The default feature cache."""
    return data_home() / "features"
