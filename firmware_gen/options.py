"""Command-line options shared by `edgetp export --c` and `edgetp verify-c --model`, so that
both turn a model file into the same integer model and device settings.

Importing this module stays cheap (no numba): it runs whenever the CLI builds its parser. The options are
generated from firmware_gen.defaults.DeviceSettings (types, choices, help); DeviceConfig checks the combination when
a command runs.
"""

from __future__ import annotations

import argparse

from edgetp.settings import add_options, fields
from edgetp.tp.config import TARGETS
from firmware_gen.defaults import DEFAULT_LR, DeviceSettings
from edgetp.fixed.device import DeviceConfig


def add_device_options(g) -> None:
    """Quantization and device settings (an argparse group or parser): one option per DeviceSettings field."""
    add_options(g, DeviceSettings)


def settings_of(args) -> DeviceSettings:
    """The DeviceSettings an options namespace (or a hil recipe's namespace) gives: a field the options leave at
    None takes its declared default (which may itself be None: the model's recipe decides)."""
    d = DeviceSettings()
    return DeviceSettings(
        **{
            k: getattr(args, k, None) if getattr(args, k, None) is not None else getattr(d, k)
            for k in fields(DeviceSettings)
        }
    )


def device_from_args(model, args: argparse.Namespace):
    """(QModel, DeviceConfig, notes) for ``model`` (edgetp.model.Model) under the options (any object with the
    DeviceSettings fields as attributes; a missing or None one takes its default)."""
    from firmware_gen.qmodel import QUANT_KEYS, qmodel_for

    args = settings_of(args)
    qm, notes = qmodel_for(model, **{k: getattr(args, k) for k in QUANT_KEYS})
    train = args.train or ("readout" if qm.frozen_hidden else "all")
    recipe = getattr(model, "recipe", None) or {}
    ft = recipe.get("finetune") or {}
    # recipe["targets"] is the pretraining's (batches of many); the device's is recipe["fixed"]["targets"]
    targets = args.targets or (recipe.get("fixed") or {}).get("targets")
    targets = targets if targets in TARGETS else "classes"
    every = args.update_every
    if every is None:
        every = ft.get("update_every", 1)
        if every != 1:
            notes.append(f"learns every {every} frames (update_every from the model's recipe)")
    lr = args.lr
    if lr is None:  # a float recipe's lr (kws-paper: Adam) is not the device rule's
        lr = float(ft.get("lr", DEFAULT_LR)) if recipe.get("fixed") else DEFAULT_LR
        if lr != DEFAULT_LR:
            notes.append(f"learning rate {lr:g} from the model's recipe")
    dev = DeviceConfig(
        targets,
        args.optimizer,
        lr,
        args.beta_shift,
        train,
        args.clip,
        lr_min=args.lr_min,
        lr_max=args.lr_max,
        update_every=every,
        frozen_hidden=qm.frozen_hidden,
    )
    return qm, dev, notes
