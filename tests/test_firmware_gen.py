"""firmware_gen without a compiler: layout, identifiers, memory plan, budgets, the Python
twins of the tensor table and digest, quantization settings."""

import zlib

import numpy as np
import pytest

from edgetp.errors import EdgetpError
from edgetp.fixed.device import DeviceConfig
from firmware_gen import tensors as T
from firmware_gen.cases import CaseSpec, build_model
from firmware_gen.generate import c_string, render
from firmware_gen.layout import check_identifier, device_layout
from firmware_gen.memplan import check_budgets, format_plan, parse_size, totals
from firmware_gen.qmodel import qmodel_hash, quant_settings


def qm_of(**kw):
    return build_model(CaseSpec(**kw))


@pytest.mark.parametrize("name", ["etp_v0", "W0", "_x", "a" * 63])
def test_identifiers_accepted(name):
    assert check_identifier(name) == name


@pytest.mark.parametrize("name", ["0x", "a-b", "int", "while", "__x", "_Xy", "a b", "", "a" * 64, "é"])
def test_identifiers_rejected(name):
    with pytest.raises(EdgetpError):
        check_identifier(name)


def test_c_string_escapes_everything():
    assert c_string('a"b\\c') == '"a\\"b\\\\c"'
    assert c_string("x\n?") == '"x\\012\\?"'
    assert c_string("né") == '"n\\303\\251"'


@pytest.mark.parametrize(
    "text,want",
    [("65536", 65536), ("64K", 65536), ("64kB", 65536), ("64KiB", 65536), ("0.5M", 524288), ("1m", 1048576)],
)
def test_parse_size(text, want):
    assert parse_size(text) == want


@pytest.mark.parametrize("text", ["", "K", "-5", "12G", "lots"])
def test_parse_size_rejects(text):
    with pytest.raises(EdgetpError):
        parse_size(text)


@pytest.mark.parametrize("targets", ["classes", "batch"])
def test_memory_plan_is_the_layout(targets):
    qm = qm_of(hidden=(6, 5), n_out=4, recurrent=True)
    ex = render(qm, DeviceConfig(targets=targets))
    lay = ex.layout
    tot = totals(ex.plan)
    assert tot["ram"] == sum(lay.nbytes(it) for it in lay.items if it.section == "ram")
    K = 4 if targets == "classes" else 1
    assert lay.item("vt1").shape == (K, 5) and lay.item("trl").shape == (K, 4)
    text = "\n".join(format_plan(ex.plan))
    assert "total RAM" in text and "total FLASH" in text and "trainable weights" in text and "scratch" in text


def test_budgets():
    ex = render(qm_of())
    tot = totals(ex.plan)
    check_budgets(ex.plan, str(tot["ram"]), str(tot["flash"]))
    with pytest.raises(EdgetpError, match=r"RAM needs .* --ram-budget .*over by 1 B"):
        check_budgets(ex.plan, str(tot["ram"] - 1))
    with pytest.raises(EdgetpError, match="FLASH needs"):
        check_budgets(ex.plan, None, "1K")


def test_state_tensors_follow_the_table_and_digest_is_zlib():
    qm = qm_of(hidden=(5, 3), recurrent=True)
    dev = T.TableDevice(qm)
    dev.train(np.arange(qm.cfg.n_in, dtype=np.int16) * 1000, 1)
    ts = dev.tensors()
    assert [n for n, _a in ts] == [it.name for it in device_layout(qm).table()]
    assert len({n for n, _a in ts}) == len(ts)
    assert T.state_digest(dev.qm, dev.state, dev.opt) == dev.digest()
    assert dev.digest() == zlib.crc32(b"".join(a.astype(a.dtype.newbyteorder("<")).tobytes() for _n, a in ts))
    assert dict(ts)["steps"][0] == 1 and dict(ts)["opt_steps"][0] == 1


def test_drift_in_the_reference_is_an_error(monkeypatch):
    monkeypatch.setattr(T, "QSTATE_FIELDS", T.QSTATE_FIELDS - {"u"})
    with pytest.raises(T.DriftError, match="u"):
        T.TableDevice(qm_of()).tensors()


def test_model_hash_covers_weights_and_formats():
    a, b = qm_of(), qm_of()
    assert qmodel_hash(a) == qmodel_hash(b)
    b.weights["W0"][0, 0] ^= 1
    assert qmodel_hash(a) != qmodel_hash(b)
    c = qm_of()
    c.fw["W1"] += 1
    assert qmodel_hash(a) != qmodel_hash(c)


def test_quant_settings_precedence():
    class M:
        recipe = {"fixed": {"fx": 9, "wbits": 8}}

    s, notes = quant_settings(M(), fx=None, wbits=16, xbits=None, headroom=None)
    assert (s["fx"], s["wbits"], s["xbits"]) == (9, 16, 16) and any("fx 9" in n for n in notes)
    with pytest.raises(EdgetpError):
        quant_settings(M(), fx=40)


def test_device_config_is_validated():
    for bad in ({"targets": "all"}, {"optimizer": "adam"}, {"train": "some"}, {"beta_shift": 63}, {"lr": -1.0}):
        with pytest.raises(EdgetpError):
            DeviceConfig(**bad)
