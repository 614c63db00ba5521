"""Run a NIR file in Norse and snnTorch as their users would, and compare with edgetp.

Needs the optional extra ``edgetp[nir-clients]`` (torch, norse, snntorch; docs/interop.md,
"NIR in Norse and snnTorch"). Each runner steps the framework's module over ``xs``
(B, T, N0) from its initial state and returns ``(u, spikes)``: the readout after every
step (B, T, O) and each hidden layer's spikes (B, T, H_l), read with forward hooks on the
modules the importer made from the nodes ``lif{l}`` and ``readout`` (the "torch" dialect:
the readout is the membrane of the never-firing CubaLIF ``readout``).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.tp.network import infer_step, init_state

CLIENTS = ("norse", "snntorch")


def _imports(client: str):
    try:
        import nir
        import torch

        mod = __import__({"norse": "norse.torch", "snntorch": "snntorch.import_nir"}[client], fromlist=["_"])
    except ImportError as exc:
        raise EdgetpError(
            f"running NIR in {client} needs the optional extra: pip install torch==2.13.0 "
            f"'edgetp[nir-clients]' && pip install --no-deps norse ({exc})"
        ) from None
    return nir, torch, mod


def _layers(graph) -> list[str]:
    return sorted((n for n in graph.nodes if n.startswith("lif") and n[3:].isdigit()), key=lambda n: int(n[3:]))


def _step_all(net, modules: dict, xs, torch, read_u, call):
    """Step ``net`` over xs; ``read_u(module, output)`` gives the readout from the readout's hook."""
    rec = {name: [] for name in modules}
    hooks = [
        mod.register_forward_hook(
            lambda m, _i, out, name=name: rec[name].append(
                read_u(m, out)
                if name == "readout"
                else (out[0] if isinstance(out, tuple) else out).detach().numpy().copy()
            )
        )
        for name, mod in modules.items()
    ]
    try:
        with torch.no_grad():
            state = None
            for t in range(xs.shape[1]):
                state = call(net, torch.from_numpy(np.ascontiguousarray(xs[:, t])), state)
    finally:
        for h in hooks:
            h.remove()
    u = np.stack(rec.pop("readout"), axis=1)
    return u, [np.stack(rec[n], axis=1) for n in sorted(rec, key=lambda n: int(n[3:]))]


def norse_run(path, xs: np.ndarray, soft_reset: bool = False):
    """``norse.torch.from_nir(graph, dt=graph.metadata['dt'])`` (with ``reset_method=reset_subtract``
    when ``soft_reset``) stepped over ``xs``: ``(u, spikes)``."""
    nir, torch, norse_torch = _imports("norse")
    graph = nir.read(str(path))
    kw = {}
    if soft_reset:
        from norse.torch.functional.reset import reset_subtract

        kw["reset_method"] = reset_subtract
    net = norse_torch.from_nir(graph, dt=float(graph.metadata["dt"]), **kw)
    mods = dict(net.named_modules())
    modules = {n: mods[n] for n in _layers(graph) + ["readout"]}
    read_u = lambda _m, out: out[1][1].v.detach().numpy().copy()  # CubaLIF: (z, (synapse state, LIF state))
    return _step_all(net, modules, xs.astype(np.float32), torch, read_u, lambda n, x, st: n(x, st)[1])


def snntorch_run(path, xs: np.ndarray):
    """``snntorch.import_nir.import_from_nir(graph)`` stepped over ``xs`` (passing the returned
    state back, which carries the recurrent spikes): ``(u, spikes)``."""
    nir, torch, import_nir = _imports("snntorch")
    graph = nir.read(str(path))
    layers = _layers(graph)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints progress and warnings
        net = import_nir.import_from_nir(graph)
    mods = dict(net.named_modules())
    modules = {n: mods[n] for n in layers + ["readout"]}
    read_u = lambda m, _out: m.mem.detach().numpy().copy()  # init_hidden: the membrane is an attribute
    return _step_all(net, modules, xs.astype(np.float32), torch, read_u, lambda n, x, st: n(x, st)[1])


def compare(u: np.ndarray, spikes: list, u_ref: np.ndarray, spikes_ref: list) -> dict:
    """Deviation of a framework's run from edgetp's: readout after the last step relative to its
    largest magnitude, argmax agreement, and hidden spikes that differ (count, first step)."""
    if u.shape != u_ref.shape or [s.shape for s in spikes] != [s.shape for s in spikes_ref]:
        raise EdgetpError(
            f"cannot compare: readout {u.shape} and spikes {[s.shape for s in spikes]} against "
            f"{u_ref.shape} and {[s.shape for s in spikes_ref]}"
        )
    last, ref = u[:, -1].astype(np.float64), u_ref[:, -1].astype(np.float64)
    scale = float(np.abs(ref).max())
    flips = [np.argwhere(a != b) for a, b in zip(spikes, spikes_ref)]
    first = min((int(f[:, 1].min()) for f in flips if len(f)), default=None)
    return {
        "rel_dev": float(np.abs(last - ref).max()) / scale if scale > 0 else float("inf"),
        "argmax_agree": int((last.argmax(1) == ref.argmax(1)).sum()),
        "n": int(ref.shape[0]),
        "spikes_differ": int(sum(len(f) for f in flips)),
        "neuron_steps": int(sum(a.size for a in spikes_ref)),
        "first_differing_step": first,
        "finite": bool(np.isfinite(u).all()),
    }


def reference_run(model, xs: np.ndarray):
    """edgetp's float reference over xs in xs's dtype: ``(u, spikes)`` like the runners."""
    params = model.params.astype(xs.dtype)
    state = init_state(model.cfg, xs.shape[0], 0, xs.dtype)
    us, spikes = [], []
    for t in range(xs.shape[1]):
        state = infer_step(params, state, np.ascontiguousarray(xs[:, t]), model.cfg)
        us.append(state.u)
        spikes.append([s.copy() for s in state.s])
    return np.stack(us, axis=1), [np.stack([s[l] for s in spikes], axis=1) for l in range(model.cfg.layers)]


def check_lines(model, path: Path, batch: int = 8, steps: int = 101) -> list[str]:
    """``edgetp export --nir F --check``: run F in each installed client on ``batch`` random
    N(0, 1) float32 utterances of ``steps`` frames (seed 0) against the float reference (a
    soft-reset model: Norse with ``reset_subtract``, snnTorch as its importer runs it)."""
    import nir

    if nir.read(str(path)).metadata.get("edgetp.nir_dialect") != "torch":
        return ["not checked: Norse and snnTorch run the torch dialect (--nir-dialect torch)"]
    xs = np.random.default_rng(0).normal(size=(batch, steps, model.cfg.n_in)).astype(np.float32)
    u_ref, s_ref = reference_run(model, xs)
    lines = []
    for client in CLIENTS:
        try:
            u, s = norse_run(path, xs, model.cfg.reset == "soft") if client == "norse" else snntorch_run(path, xs)
        except EdgetpError as exc:
            lines.append(f"not checked with {client}: {exc}")
            continue
        c = compare(u, s, u_ref, s_ref)
        lines.append(
            f"checked with {client}: readout after the last step off by {c['rel_dev']:.2g} of its largest "
            f"magnitude, argmax agrees on {c['argmax_agree']}/{c['n']}, {c['spikes_differ']} of "
            f"{c['neuron_steps']} hidden neuron-steps differ in spiking ({batch} x {steps} random steps, "
            f"float32; every step: max |u - u_ref| = {float(np.abs(u - u_ref).max()):.2g})"
        )
    return lines
