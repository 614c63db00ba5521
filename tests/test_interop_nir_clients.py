"""NIR in the frameworks that read it (docs/interop.md, "NIR in Norse and snnTorch"):
kws-mcu's export run by Norse and snnTorch against edgetp's float reference, and small
networks built and exported by snnTorch and Norse imported, fine-tuned with TP and
exported back. Needs torch, norse and snntorch (``edgetp[nir-clients]``); with CI=true
their absence fails the tests instead of skipping them."""

import dataclasses
import importlib

import numpy as np
import pytest
from conftest import require, require_module

nir = require_module("nir")

from edgetp.errors import EdgetpError  # noqa: E402
from edgetp.interop.common import reference_readout  # noqa: E402
from edgetp.interop.nir_io import NIRDialectWarning, dialect_caveats, export_nir, import_nir  # noqa: E402
from edgetp.model import Model, load_model  # noqa: E402
from edgetp.tp.network import Optimizer, train_sequence  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def clients():
    missing = []
    for name in ("torch", "norse", "snntorch", "nirtorch"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        require("nir-clients")


def runs():
    from edgetp.interop.nir_clients import norse_run, snntorch_run

    return {"norse": norse_run, "snntorch": lambda path, xs, soft=False: snntorch_run(path, xs)}


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    model = load_model("kws-mcu")
    xs = np.random.default_rng(0).normal(size=(8, 101, model.cfg.n_in)).astype(np.float32)
    return model, xs, tmp_path_factory.mktemp("kws")


def check_agrees(c):
    assert c["finite"] and c["argmax_agree"] == c["n"]
    assert c["rel_dev"] <= 1e-3
    assert c["spikes_differ"] <= 1e-3 * c["neuron_steps"]


@pytest.mark.parametrize("client", ["norse", "snntorch"])
def test_kws_mcu_export_runs_in_client_as_in_edgetp(kws, client):
    from edgetp.interop.nir_clients import compare, reference_run

    model, xs, tmp = kws
    path = export_nir(model, tmp / f"{client}.nir")
    u_ref, s_ref = reference_run(model, xs)
    active = np.mean([s.mean() for s in s_ref])
    assert 0.01 < active < 0.9 and np.abs(u_ref[:, -1]).max() > 1.0  # a comparison that can fail
    u, spikes = runs()[client](path, xs)
    assert u.shape == u_ref.shape and [s.shape for s in spikes] == [s.shape for s in s_ref]
    c = compare(u, spikes, u_ref, s_ref)
    check_agrees(c)
    assert np.abs(u - u_ref).max() <= 1e-5 * np.abs(u_ref).max()  # every step, not only the last


def test_comparison_catches_a_slightly_different_network(kws):
    """Test the tester: the reference of a model whose leak differs by 0.001 does not pass."""
    from edgetp.interop.nir_clients import compare, norse_run, reference_run

    model, xs, tmp = kws
    path = export_nir(model, tmp / "planted.nir")
    other = Model(dataclasses.replace(model.cfg, leak_m=model.cfg.leak_m + 1e-3), model.params, model.labels)
    c = compare(*norse_run(path, xs), *reference_run(other, xs))
    assert c["spikes_differ"] > 0 and c["rel_dev"] > 1e-3
    u_ref, s_ref = reference_run(model, xs)
    nan = compare(np.where(np.arange(101)[None, :, None] == 50, np.nan, u_ref), s_ref, u_ref, s_ref)
    assert not nan["finite"]  # a NaN in any step, even where the last step is fine
    with pytest.raises(EdgetpError, match="cannot compare"):  # a hidden layer it did not read
        compare(u_ref, s_ref[:-1] + [s_ref[-1][:, :50]], u_ref, s_ref)


def test_soft_reset_runs_in_norse_and_is_flagged_for_snntorch(kws):
    from edgetp.interop.nir_clients import compare, norse_run, reference_run, snntorch_run

    model, xs, tmp = kws
    soft = Model(dataclasses.replace(model.cfg, reset="soft"), model.params, model.labels)
    with pytest.warns(NIRDialectWarning, match="snnTorch runs a different"):
        path = export_nir(soft, tmp / "soft.nir")
    ref = reference_run(soft, xs)
    check_agrees(compare(*norse_run(path, xs, soft_reset=True), *ref))
    hard_in_snntorch = compare(*snntorch_run(path, xs), *ref)
    assert hard_in_snntorch["rel_dev"] > 1e-2 and hard_in_snntorch["spikes_differ"] > 0  # what the warning says
    levels = dict((text.split(":")[0], level) for level, text in dialect_caveats(soft, "torch"))
    assert levels.get("soft reset") == "warning"
    assert not [c for c in dialect_caveats(model, "torch") if c[0] == "warning"]


def finetune_and_export_back(model, xs, tmp, client):
    """A few TP steps on the imported model, then the export runs in the client as in edgetp."""
    from edgetp.interop.nir_clients import compare, reference_run

    before = [w.copy() for w in model.params.trainable()]
    labels = np.arange(xs.shape[0]) % model.cfg.n_out
    train_sequence(model.params, xs[:, :20], labels, model.cfg, Optimizer("adam", lr=1e-2))
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.params.trainable())]
    assert all(changed) and all(np.isfinite(w).all() for w in model.params.trainable())
    path = export_nir(model, tmp / f"{client}_back.nir")
    check_agrees(compare(*runs()[client](path, xs), *reference_run(model, xs)))
    assert import_nir(path).hash() == model.hash()


def test_snntorch_network_imports_finetunes_and_exports_back(tmp_path):
    """snnTorch: Linear -> RLeaky (reset to zero) -> Linear -> Leaky that never fires (its
    membrane is the readout), exported with snnTorch's own export_to_nir."""
    import snntorch as snn
    import torch
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    never = torch.finfo(torch.float32).max

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(12, 16, bias=False)
            self.lif1 = snn.RLeaky(
                beta=torch.full((16,), 0.8),
                threshold=torch.full((16,), 0.3),
                linear_features=16,
                reset_mechanism="zero",
                reset_delay=False,
                init_hidden=True,
            )
            self.fc2 = torch.nn.Linear(16, 5, bias=False)
            self.lif2 = snn.Leaky(
                beta=torch.full((5,), 0.9),
                threshold=torch.full((5,), never),
                reset_delay=False,
                init_hidden=True,
                output=True,
            )

        def forward(self, x):
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))

    net = Net()
    with torch.no_grad():
        net.fc1.weight.mul_(3.0)
        net.lif1.recurrent.bias.zero_()
    nir.write(str(tmp_path / "snn.nir"), export_to_nir(net, torch.zeros(1, 12), ignore_dims=[0]))
    model = import_nir(tmp_path / "snn.nir")
    cfg = model.cfg
    assert (cfg.net_string(), cfg.reset, cfg.leak_out) == ("12-16r-5", "hard", 0.9)
    assert abs(cfg.leak_m - 0.8) < 1e-7 and abs(cfg.vth - 0.3) < 1e-7
    xs = np.random.default_rng(1).normal(size=(4, 40, 12)).astype(np.float32)
    with torch.no_grad():
        theirs = np.stack([net(torch.from_numpy(xs[:, t]))[1].numpy().copy() for t in range(xs.shape[1])], axis=1)
    ours = reference_readout(model, xs)
    assert np.abs(theirs).max() > 0.5 and np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max()
    finetune_and_export_back(model, xs, tmp_path, "snntorch")


def test_norse_network_imports_finetunes_and_exports_back(tmp_path):
    """Norse: SequentialState(Linear, LIFBoxCell, Linear, LIBoxCell) simulated at dt = 1e-3 (Norse's
    default). Norse 1.1.0's to_nir writes tau = dt / tau_mem_inv, so it is called with dt=1.0 to
    write the true time constants; the graph does not record dt: the import is told."""
    import norse.torch as norse
    import torch

    torch.manual_seed(0)
    dt = 1e-3
    net = norse.SequentialState(
        torch.nn.Linear(12, 16, bias=False),
        norse.LIFBoxCell(
            norse.LIFBoxParameters(
                tau_mem_inv=torch.full((16,), 200.0),
                v_th=torch.full((16,), 0.3),
                v_leak=torch.zeros(16),
                v_reset=torch.zeros(16),
            )
        ),
        torch.nn.Linear(16, 5, bias=False),
        norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=torch.full((5,), 100.0), v_leak=torch.zeros(5))),
    )
    with torch.no_grad():
        net[0].weight.mul_(20.0)
        net[2].weight.mul_(10.0)
    nir.write(str(tmp_path / "norse.nir"), norse.to_nir(net, torch.zeros(12), dt=1.0))
    model = import_nir(tmp_path / "norse.nir", dt=dt)
    cfg = model.cfg
    assert (cfg.net_string(), cfg.reset) == ("12-16-5", "hard")
    assert abs(cfg.leak_m - 0.8) < 1e-6 and abs(cfg.leak_out - 0.9) < 1e-6 and abs(cfg.vth - 0.3) < 1e-7
    xs = np.random.default_rng(2).normal(size=(4, 40, 12)).astype(np.float32)
    state, theirs = None, []
    with torch.no_grad():
        for t in range(xs.shape[1]):
            out, state = net(torch.from_numpy(xs[:, t]), state)
            theirs.append(out.numpy().copy())
    theirs = np.stack(theirs, axis=1)
    ours = reference_readout(model, xs)
    assert np.abs(theirs).max() > 0.5 and np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max()
    finetune_and_export_back(model, xs, tmp_path, "norse")


def test_cli_export_check_runs_both_clients(tmp_path, capsys):
    from edgetp.cli import main
    from edgetp.model import save_model
    from edgetp.tp.config import NetConfig, init_params

    cfg = NetConfig(12, (16,), 5, recurrent=True, reset="soft", vth=0.5)
    save_model(Model(cfg, init_params(cfg, seed=4), list("abcde")), tmp_path / "m.npz")
    assert main(["export", "--model", str(tmp_path / "m.npz"), "--nir", str(tmp_path / "m.nir"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "dialect torch" in out and "warning: soft reset: snnTorch's importer always resets to zero" in out
    norse_line = next(ln for ln in out.splitlines() if ln.startswith("checked with norse"))
    assert "argmax agrees on 8/8" in norse_line and " 0 of 12928 " in norse_line
    assert "checked with snntorch" in out
    assert (
        main(
            [
                "export",
                "--model",
                str(tmp_path / "m.npz"),
                "--nir",
                str(tmp_path / "p.nir"),
                "--nir-dialect",
                "plain",
                "--check",
            ]
        )
        == 0
    )
    assert "not checked: Norse and snnTorch run the torch dialect" in capsys.readouterr().out
