"""NIR export/import: the discrete-to-continuous mapping checked by simulating the NIR
equations with forward Euler, lossless round trips, a graph built with NIR's own API
(snnTorch-style recurrent subgraph), and the errors for graphs edgetp cannot hold."""

import numpy as np
import pytest

from conftest import require_module  # noqa: E402

nir = require_module("nir")

from edgetp.errors import EdgetpError  # noqa: E402
from edgetp.interop.common import reference_readout  # noqa: E402
from edgetp.interop.nir_io import DT, export_nir, import_nir, to_nir  # noqa: E402
from edgetp.model import Model, load_model, save_model  # noqa: E402
from edgetp.tp.config import NetConfig, init_params  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::edgetp.interop.nir_io.NIRDialectWarning")  # soft reset, torch dialect
NETS = [(rec, reset, hidden) for rec in (False, True) for reset in ("soft", "hard") for hidden in ((16,), (16, 8))]


def make_model(tmp_path, **net):
    cfg = NetConfig(12, net.pop("hidden", (16,)), 5, vth=0.5, **net)
    save_model(Model(cfg, init_params(cfg, seed=3, dtype=np.float64), list("abcde")), tmp_path / "m.npz")
    return load_model(tmp_path / "m.npz")


def utterances(n_in, batch=3, steps=40):
    return np.random.default_rng(7).normal(0.0, 1.2, size=(batch, steps, n_in))


class Euler:
    """Forward-Euler simulation of a NIR graph, written from NIR's equations alone:
    tau dv/dt = v_leak - v + r I (LIF, LI), dv/dt = r I (I), tau_syn dI/dt = -I + w_in S
    (CubaLIF); a spike when v > v_threshold, then v = v_reset (or v -= v_threshold with
    ``soft``, the reset edgetp marks in metadata). Nodes step in the order they first
    appear as an edge target; an edge from a later node (a recurrent Linear) carries
    that node's output of the previous step. Nested graphs are simulated recursively."""

    def __init__(self, g, dt, soft=False):
        self.g, self.dt, self.soft = g, dt, soft
        targets = [b for _a, b in g.edges]
        self.order = [n for n, v in g.nodes.items() if isinstance(v, nir.Input)]
        self.order += [n for i, n in enumerate(targets) if n not in targets[:i]]
        self.pos = {n: i for i, n in enumerate(self.order)}
        self.sub = {n: Euler(v, dt, soft) for n, v in g.nodes.items() if isinstance(v, nir.NIRGraph)}
        self.out, self.v, self.i = {}, {}, {}

    def step(self, x):
        prev = dict(self.out)
        for n in self.order:
            node = self.g.nodes[n]
            inp = (
                x
                if isinstance(node, nir.Input)
                else sum(
                    self.out[a] if self.pos[a] < self.pos[n] else prev.get(a, 0.0) for a, b in self.g.edges if b == n
                )
            )
            self.out[n] = self.sub[n].step(inp) if n in self.sub else self.node_step(n, node, inp)
        return next(self.out[n] for n in self.order if isinstance(self.g.nodes[n], nir.Output))

    def node_step(self, n, node, inp):
        dt, v = self.dt, self.v.get(n, 0.0)
        if isinstance(node, nir.Linear):
            return inp @ node.weight.T
        if isinstance(node, nir.Affine):
            return inp @ node.weight.T + node.bias
        if isinstance(node, nir.I):
            self.v[n] = v + dt * node.r * inp
            return self.v[n]
        if isinstance(node, nir.LI):
            self.v[n] = v + dt / node.tau * (node.v_leak - v + node.r * inp)
            return self.v[n]
        if isinstance(node, (nir.LIF, nir.CubaLIF)):
            tau = node.tau if isinstance(node, nir.LIF) else node.tau_mem
            if isinstance(node, nir.CubaLIF):
                cur = self.i.get(n, 0.0)
                inp = self.i[n] = cur + dt / node.tau_syn * (-cur + node.w_in * inp)
            v = v + dt / tau * (node.v_leak - v + node.r * inp)
            s = (v > node.v_threshold).astype(float)
            self.v[n] = v - node.v_threshold * s if self.soft else np.where(s > 0, node.v_reset, v)
            return s
        return inp  # Output


def simulate(g, xs, dt, soft=False, readout=None):
    """The graph's Output at every step, or with ``readout`` the membrane of that node."""
    sim = Euler(g, dt, soft)
    outs = (
        [sim.step(xs[:, t]) for t in range(xs.shape[1])]
        if readout is None
        else [(sim.step(xs[:, t]), sim.v[readout])[1] for t in range(xs.shape[1])]
    )
    return np.stack(outs, axis=1)


def test_mapping_is_written_into_the_graph(tmp_path):
    model = make_model(tmp_path, recurrent=True, reset="soft", hidden=(16, 8), leak_out=0.9)
    g = to_nir(model, dialect="plain")
    lif, ro = g.nodes["lif1"], g.nodes["readout"]
    assert isinstance(lif, nir.LIF) and isinstance(ro, nir.LI) and isinstance(g.nodes["R0"], nir.Linear)
    assert np.allclose(lif.tau, DT / (1 - 0.77)) and np.allclose(lif.r, 1 / (1 - 0.77))
    assert np.all(lif.v_threshold == 0.5) and np.all(lif.v_reset == 0) and np.all(lif.v_leak == 0)
    assert lif.metadata["reset"] == "soft" and g.metadata["dt"] == DT
    assert np.allclose(ro.tau, DT / 0.1) and np.allclose(ro.r, 10.0)
    assert {("lif0", "R0"), ("R0", "lif0"), ("lif1", "R1"), ("R1", "lif1")} <= set(g.edges)
    assert isinstance(to_nir(make_model(tmp_path, recurrent=False), dialect="plain").nodes["readout"], nir.I)


def test_torch_dialect_is_written_into_the_graph(tmp_path):
    """Norse's and snnTorch's conventions (nir_io docstring): CubaLIF with tau_syn = dt,
    w_in = 1, r = tau/dt; recurrent Linear then an identity Linear; a never-firing readout."""
    model = make_model(tmp_path, recurrent=True, reset="hard", hidden=(16, 8), leak_out=1.0)
    g = to_nir(model)
    lif, ro = g.nodes["lif1"], g.nodes["readout"]
    assert isinstance(lif, nir.CubaLIF) and isinstance(ro, nir.CubaLIF) and g.metadata["dt"] == DT
    assert np.all(lif.tau_syn == DT) and np.all(lif.w_in == 1) and np.allclose(lif.tau_mem, DT / (1 - 0.77))
    assert np.allclose(lif.r * DT / lif.tau_mem, 1.0) and np.all(lif.v_threshold == 0.5) and np.all(lif.v_reset == 0)
    assert np.all(ro.v_threshold == np.finfo(np.float32).max) and np.all(1.0 - DT / ro.tau_mem == 1.0)
    assert np.allclose(ro.r * DT / ro.tau_mem, 1.0) and np.all(ro.tau_syn == DT)
    assert {("lif0", "R0"), ("R0", "R0_identity"), ("R0_identity", "lif0")} <= set(g.edges)
    assert np.array_equal(g.nodes["R0_identity"].weight, np.eye(16)) and np.array_equal(
        g.nodes["R0"].weight, model.params.R[0]
    )
    soft = make_model(tmp_path, reset="soft", leak_out=0.9)
    assert g.nodes["lif0"].metadata["reset"] == "hard" and to_nir(soft).nodes["lif0"].metadata["reset"] == "soft"
    assert np.allclose(to_nir(soft).nodes["readout"].tau_mem, DT / 0.1)
    with pytest.raises(EdgetpError, match="NIR dialect 'norse'"):
        to_nir(model, dialect="norse")


@pytest.mark.parametrize("dialect", ["plain", "torch"])
@pytest.mark.parametrize("rec,reset,hidden", NETS)
def test_euler_simulation_of_export_matches_reference(tmp_path, rec, reset, hidden, dialect):
    leak_out = 0.9 if len(hidden) == 2 else 1.0
    model = make_model(tmp_path, recurrent=rec, reset=reset, hidden=hidden, leak_out=leak_out)
    xs = utterances(12)
    ref = reference_readout(model, xs)
    assert ref.std() > 0.1
    g = to_nir(model, dt=1e-3, dialect=dialect)
    sim = simulate(g, xs, 1e-3, reset == "soft", readout=None if dialect == "plain" else "readout")
    assert np.abs(sim - ref).max() <= 1e-9
    if dialect == "torch":  # what the graph's Output carries: the never-firing readout's spikes
        assert not simulate(g, xs, 1e-3, reset == "soft").any()


@pytest.mark.parametrize("dialect", ["plain", "torch"])
@pytest.mark.parametrize("rec,reset,hidden", NETS)
def test_round_trip_is_lossless(tmp_path, rec, reset, hidden, dialect):
    model = make_model(tmp_path, recurrent=rec, reset=reset, hidden=hidden, leak_out=0.95 if hidden[1:] else 1.0)
    back = import_nir(export_nir(model, tmp_path / "m.nir", dialect=dialect))
    save_model(back, tmp_path / "back.npz")
    back = load_model(tmp_path / "back.npz")
    assert back.hash() == model.hash()
    xs = utterances(12)
    assert np.array_equal(reference_readout(back, xs), reference_readout(model, xs))


def api_graph(dt=1e-3, bias=0.0):
    """12 -> 16 recurrent CubaLIF (snnTorch's RSynaptic subgraph, tau_syn = dt, r = 1)
    -> 8 LIF (r = tau/dt) -> LI readout (r = 2), built with NIR's API only."""
    rng = np.random.default_rng(5)
    w = lambda o, i: rng.uniform(-1, 1, (o, i))
    full = lambda n, v: np.full(n, float(v))
    rnn = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([16])),
            "cubalif": nir.CubaLIF(
                tau_syn=full(16, dt),
                tau_mem=full(16, 5 * dt),
                r=full(16, 1),
                v_leak=full(16, 0),
                v_threshold=full(16, 0.3),
                w_in=full(16, 1),
            ),
            "w_rec": nir.Linear(weight=w(16, 16)),
            "output": nir.Output(output_type=np.array([16])),
        },
        edges=[("input", "cubalif"), ("cubalif", "w_rec"), ("w_rec", "cubalif"), ("cubalif", "output")],
    )
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([12])),
            "affine": nir.Affine(weight=w(16, 12), bias=full(16, bias)),
            "rnn": rnn,
            "fc2": nir.Linear(weight=w(8, 16)),
            "lif2": nir.LIF(tau=full(8, 5 * dt), r=full(8, 5), v_leak=full(8, 0), v_threshold=full(8, 0.3)),
            "fc3": nir.Linear(weight=w(5, 8)),
            "li": nir.LI(tau=full(5, 10 * dt), r=full(5, 2), v_leak=full(5, 0)),
            "output": nir.Output(output_type=np.array([5])),
        },
        edges=[
            ("input", "affine"),
            ("affine", "rnn"),
            ("rnn", "fc2"),
            ("fc2", "lif2"),
            ("lif2", "fc3"),
            ("fc3", "li"),
            ("li", "output"),
        ],
    )


def test_graph_built_with_nir_api_imports_with_its_behaviour(tmp_path):
    g = api_graph()
    nir.write(str(tmp_path / "api.nir"), g)
    model = import_nir(tmp_path / "api.nir", dt=1e-3, seed=2)
    cfg = model.cfg
    assert (cfg.net_string(), cfg.reset, cfg.leak_m, cfg.vth, cfg.leak_out) == ("12-16r-8r-5", "hard", 0.8, 0.3, 0.9)
    assert np.allclose(model.params.W[0], 0.2 * g.nodes["affine"].weight)  # gain r*dt/tau folded in
    assert not model.params.R[1].any()  # layer 2 has no recurrence in NIR
    assert np.array_equal(model.params.S, init_params(cfg, seed=2, dtype=np.float64).S)
    assert len(model.recipe["imported"]["notes"]) == 2
    xs = utterances(12)
    ref = reference_readout(model, xs)
    assert ref.std() > 0.1
    assert np.abs(simulate(g, xs, 1e-3) - ref).max() <= 1e-9


@pytest.mark.parametrize(
    "change,match",
    [
        (
            lambda g: g.nodes.__setitem__("lif2", nir.IF(r=np.ones(8), v_threshold=np.ones(8))),
            "node 'lif2': IF is not supp",
        ),
        (
            lambda g: g.nodes.__setitem__("affine", api_graph(bias=0.1).nodes["affine"]),
            "'affine' .Affine.: non-zero bias",
        ),
        (lambda g: g.nodes["lif2"].v_leak.__setitem__(0, 0.1), "'lif2' .LIF.: v_leak must be 0"),
        (lambda g: g.nodes["lif2"].v_threshold.__setitem__(0, 0.4), "lif2: v_threshold differs between neurons"),
        (lambda g: g.nodes["rnn"].nodes["cubalif"].tau_syn.__setitem__(slice(None), 5e-3), "tau_syn = dt"),
        (
            lambda g: (
                g.edges.__setitem__(slice(4, None), [("lif2", "output")]),  # snnTorch-style spiking classifier
                g.nodes.pop("fc3"),
                g.nodes.pop("li"),
                g.nodes.__setitem__("output", nir.Output(np.array([8]))),
            ),
            "'lif2' .LIF. feeds the Output",
        ),
        (lambda g: g.nodes.__setitem__("fc3", nir.Linear(weight=np.ones((5, 7)))), "shapes do not fit"),
    ],
)
def test_unsupported_graphs_name_the_node(tmp_path, change, match):
    g = api_graph()
    change(g)
    nir.write(str(tmp_path / "bad.nir"), nir.NIRGraph(nodes=g.nodes, edges=g.edges, type_check=False))
    with pytest.raises(EdgetpError, match=match):
        import_nir(tmp_path / "bad.nir", dt=1e-3)


def test_corrupt_file(tmp_path):
    (tmp_path / "bad.nir").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(EdgetpError, match="not a readable NIR graph"):
        import_nir(tmp_path / "bad.nir")


@pytest.mark.parametrize("dialect", ["plain", "torch"])
def test_no_leak_round_trips_and_simulates(tmp_path, dialect):
    """leak_m = leak_out = 1 (no leak): tau = dt * 2**60, for which 1 - dt/tau is 1.0."""
    cfg = NetConfig(12, (16,), 5, recurrent=True, vth=2.0, leak_m=1.0, leak_out=1.0)
    save_model(Model(cfg, init_params(cfg, seed=3, dtype=np.float64), list("abcde")), tmp_path / "m.npz")
    model = load_model(tmp_path / "m.npz")
    back = import_nir(export_nir(model, tmp_path / "m.nir", dialect=dialect))
    assert back.cfg.leak_m == 1.0 and back.hash() == model.hash()
    xs = utterances(12)
    sim = simulate(to_nir(model, dialect=dialect), xs, DT, readout=None if dialect == "plain" else "readout")
    assert np.abs(sim - reference_readout(model, xs)).max() <= 1e-9
