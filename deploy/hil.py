"""Host-in-the-loop session: fine-tune on the device, check every sample against Python.

``run_session(dev, ref, support, query, ...)`` drives a :class:`deploy.host.Device` and
a reference (anything with the methods of :class:`Reference`; the integer TP
reference is :class:`deploy.reference.IntReference`):

1. HELLO, INIT(seed) on both; the initial state digests must agree;
2. the query set is evaluated on the device (RESET, one INFER per frame, PREDICT);
3. ``epochs`` passes over the support set in a seeded order (the order of
   ``edgetp.fixed.finetune.finetune_fixed``), each sample RESET + one TRAIN per frame;
4. the query set again.

After *every* sample the device's state digest is compared with the reference's and
its step counter with the steps sent (a retried step applied twice would show there).
On a difference the tensors are fetched (debug builds) and the first differing one is
named; the session stops. When the device is reset mid-sample (``DeviceReset``), the
session restores it - writing the reference's state at the last verified sample with
WRITE_TENSOR, or, on a locked build, replaying every applied sample from INIT - and
redoes the interrupted sample; with ``recover=False`` it stops with an error naming
what was lost. A lost connection needs none of this: the Device reconnects, joins the
open session and resends its unanswered frame (deploy/host.py); only when the session
is not where it left it (``SessionLost``, a ``DeviceReset``) is the state restored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from deploy import compare
from deploy import protocol as P
from deploy.frame_costs import frame_summary, learning_mask
from deploy.host import Device, DeviceReset
from edgetp.errors import EdgetpError
from edgetp.fixed.update_q import lr_code
from edgetp.tp.schedule import finetune_epochs

MAX_RECOVERIES = 20


class Reference(Protocol):
    n_in: int
    n_out: int
    model_hash: str | None

    def init(self, seed: int) -> None: ...
    def set_lr(self, m: int, e: int) -> None: ...
    def train_sample(self, xs: np.ndarray, label: int) -> None: ...
    def infer_sample(self, xs: np.ndarray) -> int: ...
    def digest(self) -> int: ...
    def tensors(self) -> list: ...


class HilError(EdgetpError):
    """The session could not complete; ``result`` holds what was measured so far."""

    def __init__(self, msg: str, result: dict | None = None):
        super().__init__(msg)
        self.result = result or {}


def worst_window_mean(values, k: int) -> float | None:
    """The largest mean over any ``k`` consecutive values (None if fewer than ``k``): what a
    device that buffers ``k`` frames must sustain per frame when it learns every ``k`` frames."""
    v = np.asarray(values, dtype=np.float64)
    if k < 1 or v.size < k:
        return None
    c = np.concatenate([[0.0], np.cumsum(v)])
    return float((c[k:] - c[:-k]).max() / k)


@dataclass
class _Costs:
    values: list = field(default_factory=list)
    starts: list = field(default_factory=list)  # where each sample's frames begin in values

    def add(self, costs: list) -> None:
        self.starts.append(len(self.values))
        self.values.extend(costs)

    def summary(self, res: int, window: int | None = None) -> dict:
        """mean / p999 / max / min / n per frame (deploy.frame_costs); ``window`` k (training: the
        device learns every k frames): the same for the learning frames (``learn``) and the others
        (``forward``), and the worst mean over k consecutive frames in the order sent (across
        sample boundaries) and within one sample."""
        if not self.values:
            return {}
        v = np.asarray(self.values, dtype=np.float64) * res
        out = frame_summary(v)
        if window is None:
            return out
        learn = learning_mask(self.starts, len(v), window)
        out.update({"learn": frame_summary(v[learn]), "forward": frame_summary(v[~learn])})
        ends = self.starts[1:] + [len(v)]
        inside = [worst_window_mean(v[a:b], window) for a, b in zip(self.starts, ends)]
        inside = [x for x in inside if x is not None]
        out.update(
            {
                "window": window,
                "worst_window_mean": worst_window_mean(v, window),
                "worst_window_mean_in_sample": max(inside) if inside else None,
            }
        )
        return out


def first_difference(dev: Device, ref: Reference) -> str:
    """Read the device's tensors and name the first that differs from the reference
    (deploy.compare, verify-c's comparator)."""
    if not dev.info.debug:
        return "the firmware is locked (ETP_PROTO_LOCKED): its tensors cannot be read to find the first difference"
    diff = compare.first_difference(dev.state_tensors(), ref.tensors())
    return str(diff) if diff else "every tensor is equal, yet the digests differ (the digest function itself differs)"


class Session:
    def __init__(self, dev: Device, ref: Reference, seed: int = 0, recover: bool = True, progress=None):
        self.dev, self.ref, self.seed, self.recover_ok = dev, ref, seed, recover
        self.progress = progress or (lambda msg: None)
        self.res: dict = {
            "samples": 0,
            "mismatches": 0,
            "lost": 0,
            "double_applied": 0,
            "query_samples": 0,
            "resets": 0,
            "recoveries": [],
        }
        self.infer_costs, self.train_costs = _Costs(), _Costs()
        self.applied: list = []  # (lr code, xs, label) applied since INIT, for a replay
        self.dev_steps = 0  # TRAIN steps the device should have counted since INIT
        self.lr = None

    # ----------------------------------------------------------------- device side
    def _device_sample(self, xs, label) -> tuple[dict, int]:
        dev = self.dev
        dev.reset_state()
        costs = []
        r = None
        for x in xs:
            r = dev.infer(x) if label is None else dev.train(x, label)
            costs.append(r["cost"])
        d = dev.digest()
        (self.infer_costs if label is None else self.train_costs).add(costs)
        return d, (r["pred"] if r is not None else dev.predict())

    def _open(self) -> None:
        info = self.dev.hello()
        ref = self.ref
        if (info.n_in, info.n_out) != (ref.n_in, ref.n_out):
            raise HilError(
                f"the device's model has {info.n_in} inputs and {info.n_out} outputs, the reference "
                f"{ref.n_in} and {ref.n_out}: flash the firmware built from this model"
            )
        if (
            ref.model_hash
            and info.model_hash
            and not (ref.model_hash.startswith(info.model_hash) or info.model_hash.startswith(ref.model_hash))
        ):
            raise HilError(f"the device runs model {info.model_hash[:16]}, the reference is {ref.model_hash[:16]}")
        self.dev.init(self.seed)
        self.dev_steps = 0

    def _set_lr(self, code) -> None:
        self.lr = code
        if code is None:
            return
        self.ref.set_lr(*code)
        self._device_lr(code)

    def _device_lr(self, code) -> None:
        if code is not None and self.dev.info.flags & P.Flag.SET_LR:
            self.dev.set_lr(*code)

    # ----------------------------------------------------------------- recovery
    def _recover(self, where: str) -> None:
        self.res["resets"] += 1
        n_applied = len(self.applied)
        if not self.recover_ok:
            self.res["lost"] = n_applied
            raise HilError(
                f"the device was reset during {where}: its state since boot is lost - the "
                f"{n_applied} training sample(s) applied and verified before it and the partial "
                f"sample (no sample was applied twice; every digest matched up to the reset)",
                self.result(),
            )
        if len(self.res["recoveries"]) >= MAX_RECOVERIES:
            raise HilError(f"the device was reset {MAX_RECOVERIES} times; giving up during {where}", self.result())
        t0 = time.perf_counter()
        while True:
            try:
                self._open()
                how = self._restore() or self._replay()
                self._device_lr(self.lr)
                break
            except DeviceReset:
                self.res["resets"] += 1
                if len(self.res["recoveries"]) + self.res["resets"] > 4 * MAX_RECOVERIES:
                    raise HilError(
                        f"the device keeps resetting (during recovery from {where})", self.result()
                    ) from None
        self.res["recoveries"].append({"during": where, "how": how, "seconds": round(time.perf_counter() - t0, 3)})
        self.progress(f"device reset during {where}: {how}")

    def _restore(self) -> str | None:
        """Write the reference's writable tensors (debug builds); the read-only ones (frozen
        weights in flash) are the image's. Returns how, or None if it cannot or did not work."""
        if not self.dev.info.debug:
            return None
        mine = self.dev.tensors()
        theirs = self.ref.tensors()
        if [t.name for t in mine] != [n for n, _ in theirs]:
            return None
        for t, (_, arr) in zip(mine, theirs):
            if t.writable:
                self.dev.write_tensor(t.index, np.asarray(arr).ravel())
        if self.dev.digest()["digest"] != self.ref.digest():
            self.progress("restoring the state did not reproduce the digest; replaying instead")
            self.dev.init(self.seed)
            return None
        return "restored the reference's state (WRITE_TENSOR)"

    def _replay(self) -> str:
        """INIT, then every applied training sample again, in order (a locked build)."""
        lr = None
        for code, xs, label in self.applied:
            if code != lr:
                self._device_lr(code)
                lr = code
            self.dev.reset_state()
            for x in xs:
                self.dev.train(x, label)
            self.dev_steps += len(xs)
        return f"replayed {len(self.applied)} sample(s) from INIT"

    # ----------------------------------------------------------------- one sample
    def sample(self, xs, label, where: str):
        """Run one sample (``label`` None: inference) on the device and the reference and compare."""
        while True:
            try:
                before = self.dev_steps
                d, pred = self._device_sample(xs, label)
                break
            except DeviceReset:
                self._recover(where)
        ref = self.ref
        if label is None:
            ref_pred = ref.infer_sample(xs)
        else:
            ref.train_sample(xs, label)
            self.dev_steps = before + len(xs)
        got_steps = d["train_steps"]
        if label is not None and got_steps != self.dev_steps:
            self.res["double_applied"] += 1
            raise HilError(
                f"{where}: the device counted {got_steps} training steps, {self.dev_steps} were sent "
                f"(a step was applied {'twice' if got_steps > self.dev_steps else 'not at all'})",
                self.result(),
            )
        want = ref.digest()
        if d["digest"] != want:
            self.res["mismatches"] += 1
            why = first_difference(self.dev, ref)
            self.res["first_mismatch"] = {
                "sample": where,
                "device_digest": f"{d['digest']:08x}",
                "reference_digest": f"{want:08x}",
                "detail": why,
            }
            raise HilError(
                f"{where}: state digest {d['digest']:08x} on the device, {want:08x} in the reference; {why}",
                self.result(),
            )
        if label is None and pred != ref_pred:
            self.res["mismatches"] += 1
            raise HilError(f"{where}: the device predicts {pred}, the reference {ref_pred}", self.result())
        if label is not None:
            self.applied.append((self.lr, xs, label))
            self.res["samples"] += 1
        else:
            self.res["query_samples"] += 1
        return pred

    def evaluate(self, query, tag: str) -> float | None:
        if not len(query[1]):
            return None
        hits = 0
        for i, (xs, y) in enumerate(zip(*query)):
            hits += int(self.sample(xs, None, f"query sample {i} ({tag})") == int(y))
        self.progress(f"query accuracy {tag}: {100.0 * hits / len(query[1]):.2f} %")
        return 100.0 * hits / len(query[1])

    def result(self) -> dict:
        info = self.dev.info
        res = self.res
        out = {"samples": res["samples"], "mismatches": res["mismatches"]}
        out.update({k: v for k, v in res.items() if k not in out})
        unit = info.counter_name if info else "none"
        r = info.counter_res if info else 1
        out["counter"] = unit
        every = getattr(getattr(self.ref, "cfg", None), "update_every", 1)  # the device learns every k frames
        out["train_step"] = self.train_costs.summary(r, every)
        out["infer_step"] = self.infer_costs.summary(r)
        out["link"] = dict(self.dev.stats.__dict__)
        return out


def run_session(
    dev: Device,
    ref: Reference,
    support,
    query,
    epochs: int = 1,
    lr: float | None = None,
    seed: int = 0,
    schedule: str = "cosine",
    recover: bool = True,
    progress=None,
    session_cls=None,
) -> dict:
    """The whole HIL session (module docstring); returns the result dict (``samples``,
    ``mismatches`` first). ``support``/``query``: (xs (N, T, n_in) int, ys). The epochs (rate
    codes, sample order) are ``finetune_epochs``' at batch 1, those of ``finetune --fixed``;
    ``lr`` None keeps the model's built-in rate."""
    s = (session_cls or Session)(dev, ref, seed, recover, progress)
    t0 = time.perf_counter()
    while True:
        try:
            s._open()
            break
        except DeviceReset:
            s.res["resets"] += 1
            if s.res["resets"] > MAX_RECOVERIES:
                raise HilError("the device keeps resetting while the session opens", s.result()) from None
    ref.init(seed)
    d = dev.digest()["digest"]
    if d != ref.digest():
        s.res["mismatches"] += 1
        raise HilError(
            f"after INIT the device's digest is {d:08x}, the reference's {ref.digest():08x}: "
            f"{first_difference(dev, ref)}",
            s.result(),
        )
    s.res["query_acc_before"] = s.evaluate(query, "before")
    xs, ys = support
    for ep in finetune_epochs(len(ys), epochs, seed, 1, lr, schedule=schedule):
        s._set_lr(None if ep.lr is None else lr_code(ep.lr))
        for k, (i,) in enumerate(ep.batches):
            s.sample(xs[i], int(ys[i]), f"training sample {k + 1}/{len(ys)} of epoch {ep.index + 1} (support #{i})")
        s.progress(f"epoch {ep.index + 1}/{epochs}: {len(ys)} samples, digests equal")
    s.res["query_acc_after"] = s.evaluate(query, "after")
    s.res["counters"] = dev.counters()
    s.res["seconds"] = round(time.perf_counter() - t0, 2)
    if hasattr(s, "frontend_costs"):
        s.res["frontend"] = s.frontend_costs()
    return s.result()
