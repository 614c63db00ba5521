"""The device's default quantization: what ``edgetp export --c``, ``verify-c --model`` and
``hil`` use for a setting that neither the options nor the model's ``recipe["fixed"]``
give (``firmware_gen.qmodel.quant_settings``), and what a recorded ``recipe["fixed"]``
holds besides its calibrated input format (``edgetp.kws.fixed_protocol.fixed_settings``).

A leaf module (no numpy, no numba): the command-line parsers read it for their help.
"""

DEFAULTS = {"wbits": 16, "xbits": 16, "fx": 12, "headroom": 1.0}
DEFAULT_LR = 1e-4   # the device rule's learning rate when neither an option nor a device recipe gives one
