"""Things defined once and used everywhere: compiler flags, the device's quantization
defaults, the trainable matrices' names, the float -> int conversion, the target sets."""

import re

import numpy as np

from conftest import ROOT

PACKAGES = ("edgetp", "firmware_gen", "deploy")


def _sources():
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            if "models" not in f.relative_to(ROOT).parts:
                yield f


def _defining(pattern: str) -> list[str]:
    rx = re.compile(pattern, re.M)
    return [str(f.relative_to(ROOT)) for f in _sources() if rx.search(f.read_text())]


def test_compiler_flags_are_written_once():
    import deploy.build as fw
    import firmware_gen.build as gen

    assert fw.ARM_FLAGS is gen.CORTEX_M4 and fw.WARN is gen.WARN
    assert gen.STRICT[: len(gen.WARN)] == gen.WARN
    assert _defining(r'"-mcpu=cortex-m4"') == ["firmware_gen/build.py"]
    assert _defining(r'"-mfloat-abi=') == ["firmware_gen/build.py"]
    assert _defining(r'"-Wstrict-prototypes"') == ["firmware_gen/build.py"]


def test_quantization_defaults_are_written_once():
    import firmware_gen.defaults as d
    import firmware_gen.qmodel as q

    assert q.DEFAULTS is d.DEFAULTS  # the options' help reads them through firmware_gen.defaults.DeviceSettings
    assert _defining(r'^DEFAULTS = \{"wbits"') == ["firmware_gen/defaults.py"]


def test_trainable_names_and_the_one_conversion():
    from edgetp.fixed.qconfig import from_float, quantize_array
    from edgetp.fixed.quantize import quantize_inputs
    from edgetp.model import Model
    from edgetp.tp.config import init_params, parse_net, trainable_names

    for net in ("6-5r-4r-3", "6-5-3"):
        cfg = parse_net(net)
        p = init_params(cfg, 0)
        qm = from_float(cfg, p, 8, 16)
        names = trainable_names(cfg)
        assert qm.trainable_names == names == list(p.named())[: len(names)]
        assert [n for n, _a in qm.named_arrays()] == names + ["S"] + (["S_rec"] if cfg.recurrent else [])
        assert all(a is b for a, b in zip(p.trainable(), [p.named()[n] for n in names]))
        assert list(Model(cfg, p, ["a", "b", "c"]).arrays()) == list(p.named())
    x = np.random.default_rng(0).standard_normal((3, 4, 5)) * 1e3
    for bits in (8, 16):
        np.testing.assert_array_equal(quantize_inputs(x, 7, bits), quantize_array(x, 7, bits))


def test_target_sets_come_from_one_place():
    from edgetp.tp import config

    assert config.TARGETS == ("batch", "classes")
    # the literal tuple is written once (the contract and the integer reference import it)
    assert _defining(r'\("batch", "classes"\)|\("classes", "batch"\)') == ["edgetp/tp/config.py"]


def test_fine_tuning_defaults_come_from_one_place():
    """The learning rate and the EMA decay of fine-tuning are declared once (edgetp.tp.config) for the float and
    integer rules, the device settings and the recipes; the rest import them."""
    from edgetp.fixed.update_q import QOpt
    from edgetp.kws.train import Recipe
    from edgetp.tp import config
    from edgetp.tp.network import ROWNORM_DECAY, Optimizer
    from firmware_gen.defaults import DeviceSettings
    from edgetp.fixed.device import DeviceConfig

    assert Recipe.lr == Optimizer.lr == DeviceConfig.lr == config.DEFAULT_LR
    assert QOpt.beta_shift == DeviceSettings.beta_shift == DeviceConfig.beta_shift == config.DEFAULT_BETA_SHIFT
    assert ROWNORM_DECAY == 2.0**-config.DEFAULT_BETA_SHIFT
    lr = r"(\blr\w*|LR)\s*(:\s*float\s*)?=\s*1e-4\b(?!,)|(Optimizer|make)\([^)\n]*\b1e-4\b"
    beta = r"(beta_shift|BETA_SHIFT)\s*(:\s*int\s*)?=\s*10\b|2\.0 \*\* -10\b"
    assert _defining(lr) == _defining(beta) == ["edgetp/tp/config.py"]
    # the patterns see a default written again (a planted copy)
    assert re.search(lr, "def f(x, lr: float = 1e-4):") and re.search(beta, "    beta_shift: int = 10")
