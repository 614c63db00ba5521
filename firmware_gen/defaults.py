"""The device settings, each default declared once: the quantization (``DEFAULTS``: what ``edgetp export --c``,
``verify-c --model`` and ``hil`` use for a setting that neither the options nor the model's ``recipe["fixed"]``
give, ``firmware_gen.qmodel.quant_settings``; what a recorded ``recipe["fixed"]`` holds besides its calibrated input
format, ``edgetp.kws.fixed_protocol.fixed_settings``) and the device's learning settings (``DeviceSettings``: the
options of export --c / verify-c, the device keys of a `hil` recipe file; ``edgetp.fixed.device.DeviceConfig`` shares
its defaults, declared in ``edgetp.fixed.contract``), and the hardware budgets of the device tier the shipped device
models are held to.

Light to import (no numba): the command-line parsers read it when they are built.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgetp.fixed.contract import DEVICE_CLIP, DEVICE_LR_MIN, DEVICE_OPTIMIZER, OPT_CFG_RANGES, OPT_KINDS, REMOVED_KINDS
from edgetp.settings import setting
from edgetp.tp.config import DEFAULT_BETA_SHIFT, DEFAULT_LR, TARGETS, TRAIN_MODES  # DEFAULT_LR: the device's too

DEFAULTS = {"wbits": 16, "xbits": 16, "fx": 12, "headroom": 1.0}
WIDTHS = (8, 16)


def _within(name: str) -> dict:
    """The device's inclusive range of an opt_cfg field, as ``setting``'s bounds (one range, the contract's)."""
    lo, hi = OPT_CFG_RANGES[name]
    return {"lo": lo, "hi": hi}


@dataclass
class DeviceSettings:
    """How a model is quantized and exported for the device. None: the model's recipe (recipe["fixed"],
    recipe["finetune"]), else the default the help names."""

    wbits: int | None = setting(
        None, f"weight width (default: the model's recipe, else {DEFAULTS['wbits']})", choices=WIDTHS
    )
    xbits: int | None = setting(
        None, f"feature width (default: the model's recipe, else {DEFAULTS['xbits']})", choices=WIDTHS
    )
    fx: int | None = setting(
        None, f"fractional bits of the features (default: the model's recipe, else {DEFAULTS['fx']})", lo=0, hi=24
    )
    headroom: float | None = setting(None, "weight headroom >= 1 for fine-tuning growth", lo=1)
    frozen_hidden: bool | None = setting(
        None,
        "hidden layers constant in flash (at hbits), only the readout learns "
        "in RAM, no target set; needs train readout (default: the model's "
        'recipe["fixed"]["frozen_hidden"], else off)',
    )
    hbits: int | None = setting(
        None,
        "width of the hidden weights of a frozen-hidden build (default: the model's recipe, else wbits)",
        choices=WIDTHS,
    )
    row_scales: bool | None = setting(
        None,
        "one power-of-two scale per row of the hidden input weights (one shift "
        "per neuron, in flash); needs frozen_hidden (default: the model's "
        'recipe["fixed"]["row_scales"], else off)',
    )
    targets: str | None = setting(
        None, 'target set on the device (default: the model\'s recipe["fixed"], else classes)', choices=TARGETS
    )
    optimizer: str = setting(DEVICE_OPTIMIZER, "optimizer after etp_init", choices=OPT_KINDS, removed=REMOVED_KINDS)
    lr: float | None = setting(
        None,
        "learning rate after etp_init (default: the model's recipe[\"finetune\"][\"lr\"] "
        f"when the model records a device recipe (recipe[\"fixed\"]), else {DEFAULT_LR:g})",
        lo=0,
    )
    lr_min: float = setting(DEVICE_LR_MIN, "lowest learning rate the device accepts later (SET_LR / etp_set_lr)", lo=0)
    lr_max: float | None = setting(
        None,
        "highest learning rate the device accepts later (default: lr); a locked "
        "product keeps learning only within [lr_min, lr_max]",
        lo=0,
    )
    beta_shift: int = setting(
        DEFAULT_BETA_SHIFT,
        "colnorm/rownorm EMA decay 2^-N",
        **_within("beta_shift"),
    )
    train: str | None = setting(
        None, "layers that learn: all, or readout (the default with frozen_hidden)", choices=TRAIN_MODES
    )
    clip: int = setting(
        DEVICE_CLIP,
        "normalised rules: limit each weight's move to 2^CLIP * lr (-1: no limit)",
        **_within("clip"),
    )
    update_every: int | None = setting(
        None,
        "etp_train_step learns on the frames t % K == 0 of a sample only "
        "(ETP_UPDATE_EVERY; default: the model's "
        "recipe[\"finetune\"][\"update_every\"], else 1)",
        lo=1,
    )


# The device tier's budgets (issue 14; the per-frame ones of issue 28 are targets, not yet these): what `edgetp hil`
# checks a whole-firmware session against and the tests hold the shipped device models to.
# RAM / flash: the nRF52840 class: kws-mcu may use 160 KB of its 256 KB RAM for learning and 512 KB of its 1 MB flash
# (kws-mcu-64k stays within 64 KB of RAM). Steps and the frontend hop: instructions (QEMU -icount), per 10 ms frame.
BUDGETS = {
    "train_step": 800_000,
    "infer_step": 200_000,
    "ram": 160 * 1024,
    "flash": 512 * 1024,
    "frontend_hop": 150_000,
    "frame": 400_000,  # any 10 ms frame from raw audio, everything that runs in it (issue 28)
}
RAM_64K = 64 * 1024  # kws-mcu-64k's tier
