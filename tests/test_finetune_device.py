"""`finetune --kws --fixed` runs what the device runs, or refuses naming the option.

The refusals come before any corpus is read, so they run on the shipped models with an empty
EDGETP_HOME. The accepted setup is the one `edgetp hil` and `export --c` build from the same
model file (firmware_gen.options.device_from_args); that the device computes it bit for bit is
tests/test_firmware_harness.py's kws-mcu run.
"""

import argparse

import pytest

from edgetp.cli.finetune import recipe_from, register


def _args(*flags):
    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    return p.parse_args(["finetune", "--kws", *flags])


@pytest.mark.parametrize(
    "flags,expect",
    [
        (["--set", "batch=8"], "batch 8 with --fixed"),
        (["--set", "rehearsal=2"], "rehearsal 2 with --fixed"),
        (["--set", "optimizer=adam"], "optimizer adam with --fixed"),
        (["--set", "train=all"], "train all with --fixed"),  # kws-mcu's hidden layer is frozen in flash
        (["--set", f"update_every={2**32}"], "update_every 4294967296 with --fixed"),
        (["--set", "lr=1e-40"], "lr 1e-40 with --fixed"),  # its code's exponent exceeds SET_LR's range
        (["--set", "shift=4"], "shift with --fixed"),
    ],
)
def test_fixed_refuses_what_the_device_cannot_run(cli, tmp_path, flags, expect):
    r = cli("finetune", "--kws", "--fixed", "--model", "kws-mcu", *flags, env={"EDGETP_HOME": str(tmp_path)})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert expect in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_the_same_options_run_on_the_float_rule():
    """The refusals are --fixed's: the float rule takes batches, rehearsal and Adam."""
    from edgetp.model import load_model

    r = recipe_from(
        _args("--set", "batch=8", "--set", "rehearsal=2", "--set", "optimizer=adam", "--set", "train=all"),
        load_model("kws-mcu"),
    )
    assert (r.batch, r.rehearsal, r.optimizer, r.train) == (8, 2.0, "adam", "all")


def test_fixed_defaults_are_the_device_setup_hil_builds():
    """kws-mcu with --fixed and no options: batch 1, no rehearsal, readout only, the recorded lr and
    update_every, the device's rule: what `hil` / `export --c` build from the same file."""
    from edgetp.model import load_model
    from firmware_gen.options import add_device_options, device_from_args

    model = load_model("kws-mcu")
    r = recipe_from(_args("--fixed"), model)
    p = argparse.ArgumentParser()
    add_device_options(p)
    qm, dev, _notes = device_from_args(model, p.parse_args([]))
    assert qm.frozen_hidden and (r.batch, r.rehearsal) == (1, 0.0)
    assert (r.train, r.lr, r.update_every, r.targets) == (dev.train, dev.lr, dev.update_every, dev.targets)
    assert r.optimizer == dev.optimizer == "colnorm"
    assert r.update_every == model.recipe["finetune"]["update_every"] == 2


def test_fixed_drops_a_float_recipes_batches_and_rehearsal():
    """kws-paper's recorded recipe (batch 8, rehearsal 2, augmented) is the float rule's: --fixed runs
    it at batch 1 without rehearsal or augmentation instead of refusing its own defaults."""
    from edgetp.model import load_model

    model = load_model("kws-paper")
    assert model.recipe["finetune"]["batch"] > 1 and model.recipe["finetune"]["rehearsal"] > 0
    r = recipe_from(_args("--fixed"), model)
    assert (r.batch, r.rehearsal, r.shift, r.noise, r.warp, r.train) == (1, 0.0, 0, 0.0, 0.0, "all")
