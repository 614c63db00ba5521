"""The float reference of Traces Propagation (spec: docs/tp-algorithm.md).

The names below load their module on first use, so that importing a light submodule
(``edgetp.tp.config`` for ``TARGETS``, as the command-line parsers do) does not compile
the numba kernels.
"""

from __future__ import annotations

import importlib

_HOME = {
    "NetConfig": "config",
    "Params": "config",
    "parse_net": "config",
    "init_params": "config",
    "TARGETS": "config",
    "trainable_names": "config",
    "TPState": "network",
    "Optimizer": "network",
    "init_state": "network",
    "train_step": "network",
    "infer_step": "network",
    "train_sequence": "network",
    "infer_sequence": "network",
    "predict": "network",
}

__all__ = list(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'edgetp.tp' has no attribute {name!r}")
    return getattr(importlib.import_module(f"edgetp.tp.{_HOME[name]}"), name)


def __dir__():
    return sorted(set(globals()) | set(_HOME))
