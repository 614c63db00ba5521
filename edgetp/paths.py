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


def portable(path) -> str:
    """``path`` as a shipped artefact (model, results, card) may record it: relative to the working folder when
    inside it, ``$EDGETP_HOME/...`` inside the data home, else its folder's and its own name (``yes/x.wav``: a GSC
    clip's word is its folder). Never a machine's absolute
    path: it names one machine's folders and breaks (or silently misleads) on every other."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        return str(path)
    p = p.resolve()
    for base, shown in ((Path.cwd().resolve(), None), (home().resolve(), "$EDGETP_HOME")):
        try:
            rel = p.relative_to(base)
        except ValueError:
            continue
        return str(rel) if shown is None else f"{shown}/{rel}"
    return str(Path(p.parent.name) / p.name)
