"""Command-line options shared by `edgetp export --c` and `edgetp verify-c --model`, so that
both turn a model file into the same integer model and device settings.

Importing this module stays cheap (no numba): it runs whenever the CLI builds its parser;
the optimizer and train choices are checked by DeviceConfig when a command runs.
"""
from __future__ import annotations

import argparse

from edgetp.tp.config import TARGETS
from firmware_gen.defaults import DEFAULT_LR, DEFAULTS


def add_device_options(g) -> None:
    """Quantization and device settings (an argparse group or parser)."""
    g.add_argument("--wbits", type=int, choices=(8, 16), default=None,
                   help=f"weight width (default: the model's recipe, else {DEFAULTS['wbits']})")
    g.add_argument("--xbits", type=int, choices=(8, 16), default=None,
                   help=f"feature width (default: the model's recipe, else {DEFAULTS['xbits']})")
    g.add_argument("--fx", type=int, default=None, metavar="BITS",
                   help=f"fractional bits of the features (default: the model's recipe, else {DEFAULTS['fx']})")
    g.add_argument("--headroom", type=float, default=None, help="weight headroom >= 1 for fine-tuning growth")
    g.add_argument("--frozen-hidden", action=argparse.BooleanOptionalAction, default=None,
                   help="hidden layers constant in flash (at --hbits), only the readout learns in RAM, no target "
                        'set; needs --train readout (default: the model\'s recipe["fixed"]["frozen_hidden"], else off)')
    g.add_argument("--hbits", type=int, choices=(8, 16), default=None,
                   help="width of the hidden weights of a --frozen-hidden build (default: the model's recipe, "
                        "else --wbits)")
    g.add_argument("--row-scales", action=argparse.BooleanOptionalAction, default=None,
                   help="one power-of-two scale per row of the hidden input weights (one shift per neuron, in "
                        'flash); needs --frozen-hidden (default: the model\'s recipe["fixed"]["row_scales"], else off)')
    g.add_argument("--targets", choices=TARGETS, default=None,
                   help='target set on the device (default: the model\'s recipe["fixed"], else classes)')
    g.add_argument("--optimizer", default="colnorm", metavar="KIND",
                   help="optimizer after etp_init: colnorm (default), rownorm, factored or sgd")
    g.add_argument("--lr", type=float, default=None,
                   help="learning rate after etp_init (default: the model's recipe[\"finetune\"][\"lr\"] when the "
                        f"model records a device recipe (recipe[\"fixed\"]), else {DEFAULT_LR:g})")
    g.add_argument("--lr-min", type=float, default=0.0,
                   help="lowest learning rate the device accepts later (SET_LR / etp_set_lr; default 0)")
    g.add_argument("--lr-max", type=float, default=None,
                   help="highest learning rate the device accepts later (default: --lr); a locked product "
                        "keeps learning only within [--lr-min, --lr-max]")
    g.add_argument("--beta-shift", type=int, default=10, help="colnorm/rownorm/factored EMA decay 2^-N (default 10)")
    g.add_argument("--train", default=None, metavar="WHICH",
                   help="layers that learn: all (default) or readout (the default with --frozen-hidden)")
    g.add_argument("--clip", type=int, default=-1, help="normalised rules: limit each weight's move to 2^CLIP * lr "
                   "(default -1: no limit)")
    g.add_argument("--update-every", type=int, default=None, metavar="K",
                   help="etp_train_step learns on the frames t %% K == 0 of a sample only (ETP_UPDATE_EVERY; "
                        'default: the model\'s recipe["finetune"]["update_every"], else 1)')


def device_from_args(model, args: argparse.Namespace):
    """(QModel, DeviceConfig, notes) for ``model`` (edgetp.model.Model) under the options."""
    from firmware_gen.qmodel import qmodel_for
    from firmware_gen.tensors import DeviceConfig

    qm, notes = qmodel_for(model, wbits=args.wbits, xbits=args.xbits, fx=args.fx, headroom=args.headroom,
                           hbits=getattr(args, "hbits", None), frozen_hidden=getattr(args, "frozen_hidden", None),
                           row_scales=getattr(args, "row_scales", None))
    train = getattr(args, "train", None) or ("readout" if qm.frozen_hidden else "all")
    recipe = getattr(model, "recipe", None) or {}
    ft = recipe.get("finetune") or {}
    # recipe["targets"] is the pretraining's (batches of many); the device's is recipe["fixed"]["targets"]
    targets = args.targets or (recipe.get("fixed") or {}).get("targets")
    targets = targets if targets in TARGETS else "classes"
    every = getattr(args, "update_every", None)
    if every is None:
        every = ft.get("update_every", 1)
        if every != 1:
            notes.append(f"learns every {every} frames (update_every from the model's recipe)")
    lr = args.lr
    if lr is None:   # a float recipe's lr (kws-paper: Adam) is not the device rule's
        lr = float(ft.get("lr", DEFAULT_LR)) if recipe.get("fixed") else DEFAULT_LR
        if lr != DEFAULT_LR:
            notes.append(f"learning rate {lr:g} from the model's recipe")
    dev = DeviceConfig(targets, args.optimizer, lr, args.beta_shift, train, args.clip,
                       lr_min=getattr(args, "lr_min", 0.0), lr_max=getattr(args, "lr_max", None), update_every=every,
                       frozen_hidden=qm.frozen_hidden)
    return qm, dev, notes
