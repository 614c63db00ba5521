"""The weight store's proof: cut the power at every flash operation of a save, restart, check.

``power_cut_sweep(target, image, ref, samples)`` (``edgetp hil --power-cut-sweep``):

1. On a blank flash: INIT, train sample 1, SAVE (generation 1), train sample 2, SAVE
   (generation 2): the *old* state. A copy of the flash now is the base of every cut. Train
   sample 3, SAVE (generation 3): the *new* state; the answer gives the save's erase and
   program operations. The flash image is checked against the Python twin
   (``firmware_gen.store``: the slot holds exactly the reference's persistent tensors).
2. Restart on that flash: the device must boot generation 3 with the new state, then
   train sample 4 bit-exactly like the reference continuing from the new state (it goes
   on learning exactly as before).
3. For every operation index ``n`` and cut mode (``torn``: the operation's bytes end up
   random; ``after``: it completes, then the power goes), one run: a fresh copy of the
   base, start with the cut armed, boot (must be generation 2, the old state), train
   sample 3 (must match the reference), SAVE - the device dies at operation ``n`` -,
   restart without a cut and classify the booted state by its digest against the
   reference's: ``restored_old``, ``restored_new``, or ``corrupt`` (neither: another
   generation, the shipped weights, or a mix). The new state may only appear once the
   last operation completed (``after`` at the last index); anywhere else it is
   ``misplaced`` (the save became valid before its header was complete).

A cut restores *old* or *new* state digests as the device holds them after boot: the
persistent tensors as saved, neuron state zeroed (what ``etp_reset_state`` zeroes).
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path

import numpy as np

from deploy import protocol as P
from deploy.host import Device
from edgetp.errors import EdgetpError
from deploy.targets import start
from firmware_gen import store

MODES = ("torn", "after")
N_SAMPLES = 4


class SweepError(EdgetpError):
    """The sweep could not be set up (the firmware or the base runs misbehaved)."""


def _open(target, timeout: float) -> Device:
    import serial

    try:
        port = serial.serial_for_url(target.url, timeout=0.01)
    except (serial.SerialException, ValueError) as exc:
        raise EdgetpError(f"cannot open {target.url}: {exc}") from None
    return Device(port, timeout=timeout, retries=3)


def _train(dev: Device, xs, label: int) -> None:
    dev.reset_state()
    for x in xs:
        dev.train(x, int(label))


def _boot_state(ref):
    """The reference as the device is right after a boot into its saved state."""
    r = copy.deepcopy(ref)
    r.dev.reset()
    return r


def _save_until_death(dev: Device, target, wait: float) -> str:
    """Send SAVE; 'died' when the process ends before an answer, 'saved' when it answers."""
    seq = (dev.seq + 1) % P.SEQ_MOD
    dev.port.write(P.encode(int(P.Cmd.SAVE), seq))
    end = time.monotonic() + wait
    while time.monotonic() < end:
        if target.proc.poll() is not None:
            return "died"
        try:
            frames = dev.parser.feed(dev.port.read(256))
        except Exception:  # noqa: BLE001 - the pty hangs up when the device process dies
            frames = []
            time.sleep(0.002)
        for fr in frames:
            if fr.cmd == P.Cmd.SAVE and fr.seq == seq:
                return "saved"
    raise SweepError(f"the device neither answered SAVE nor died within {wait:g} s")


def cut_indices(n_ops: int, sample: int = 0) -> list[int]:
    """Every operation index, or ``sample`` of them spread over the save (first, last and the
    header's operations always included)."""
    if not sample or sample >= n_ops:
        return list(range(n_ops))
    pick = set(np.linspace(0, n_ops - 1, sample).round().astype(int).tolist())
    pick |= {0, 1, n_ops - 3, n_ops - 2, n_ops - 1}
    return sorted(i for i in pick if 0 <= i < n_ops)


class Sweep:
    def __init__(
        self,
        target_name: str,
        image,
        ref,
        samples,
        workdir,
        seed: int = 0,
        timeout: float = 0.5,
        progress=None,
        start_fn=None,
    ):
        if len(samples) < N_SAMPLES:
            raise SweepError(f"the sweep needs {N_SAMPLES} training samples, got {len(samples)}")
        self.target_name, self.image, self.ref0, self.samples = target_name, image, ref, samples
        self.work = Path(workdir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.seed, self.timeout = seed, timeout
        self.say = progress or (lambda m: None)
        self.start = start_fn or start
        self.death_wait = 60.0 if target_name == "host" else 600.0

    # --------------------------------------------------------------- phase 1 and 2
    def baseline(self) -> dict:
        flash0 = self.work / "flash0.bin"
        flash0.unlink(missing_ok=True)
        ref = self.ref0
        ref.init(self.seed)
        with self.start(self.target_name, self.image, flash=flash0) as t:
            dev = _open(t, self.timeout)
            try:
                info = dev.hello()
                if not info.store or not info.store["has_store"]:
                    raise SweepError("the firmware has no weight store (export the model with this firmware_gen)")
                if info.store["boot"] != 1:
                    raise SweepError(f"a blank flash booted with store status {info.store}")
                dev.init(self.seed)
                saves = []
                for k in range(3):
                    if k == 2:  # generation 2 is saved: the base of every cut
                        shutil.copyfile(flash0, self.work / "base.bin")
                        self.old = _boot_state(ref)
                    xs, y = self.samples[k]
                    _train(dev, xs, y)
                    ref.train_sample(xs, y)
                    d = dev.digest()["digest"]
                    if d != ref.digest():
                        raise SweepError(
                            f"training sample {k + 1}: device digest {d:08x}, reference {ref.digest():08x}"
                        )
                    saves.append(dev.save())
                self.new_trained = ref.digest()
                self.new = _boot_state(ref)
                self.old_d, self.new_d = self.old.digest(), self.new.digest()
            finally:
                dev.close()
        last = saves[-1]
        if [s["generation"] for s in saves] != [1, 2, 3]:
            raise SweepError(
                f"the saves went to (slot, generation) {[(s['slot'], s['generation']) for s in saves]}, "
                "expected generations 1, 2, 3"
            )
        self.n_ops = last["erases"] + last["programs"]
        return {"erases": last["erases"], "programs": last["programs"], "flash": flash0}

    def twin_check(self, flash: Path, geo, model_hash: str, lay) -> None:
        """The flash image holds what the Python twin says: generation 3, the new state's bytes."""
        img = flash.read_bytes()
        slot = store.boot_select(geo, img, model_hash)
        want = store.payload_of(lay, self.new.dev.tensors())
        if slot is None or slot.generation != 3 or slot.payload != want:
            raise SweepError(
                "the flash image is not what firmware_gen.store describes: "
                + (
                    "no valid slot"
                    if slot is None
                    else f"slot {slot.index} generation {slot.generation}, "
                    f"payload {'equal' if slot.payload == want else 'different'}"
                )
            )
        k = 1 - slot.index
        old = store.decode_slot(geo, img[k * geo.slot_bytes : (k + 1) * geo.slot_bytes], k, model_hash)
        if not old.valid or old.generation != 2 or old.payload != store.payload_of(lay, self.old.dev.tensors()):
            raise SweepError("the other slot does not hold generation 2's state as firmware_gen.store describes it")

    def resume(self, flash: Path) -> dict:
        """Boot the complete save, go on learning: sample 4 must match the reference."""
        ref = copy.deepcopy(self.new)
        xs, y = self.samples[3]
        with self.start(self.target_name, self.image, flash=flash) as t:
            dev = _open(t, self.timeout)
            try:
                st = dev.hello().store
                d0 = dev.digest()["digest"]
                _train(dev, xs, y)
                ref.train_sample(xs, y)
                d1 = dev.digest()["digest"]
            finally:
                dev.close()
        ok = st["generation"] == 3 and d0 == self.new_d and d1 == ref.digest()
        return {"boot": st, "boot_digest_equal": d0 == self.new_d, "samples": 1, "mismatches": int(not ok)}

    # --------------------------------------------------------------- phase 3
    def one_cut(self, n: int, mode: str) -> dict:
        flash = self.work / "cut.bin"
        shutil.copyfile(self.work / "base.bin", flash)
        xs, y = self.samples[2]
        with self.start(self.target_name, self.image, flash=flash, cut=n, cut_mode=mode) as t:
            dev = _open(t, self.timeout)
            try:
                st = dev.hello().store
                if st["generation"] != 2 or dev.digest()["digest"] != self.old_d:
                    raise SweepError(f"cut {n} ({mode}): the base flash booted {st}, not generation 2's state")
                _train(dev, xs, y)
                if dev.digest()["digest"] != self.new_trained:
                    raise SweepError(f"cut {n} ({mode}): training sample 3 again gave another state")
                outcome = _save_until_death(dev, t, self.death_wait)
            finally:
                dev.close()
        if outcome != "died":
            return {"cut": n, "mode": mode, "outcome": "not_cut"}
        with self.start(self.target_name, self.image, flash=flash) as t:
            dev = _open(t, self.timeout)
            try:
                st = dev.hello().store
                d = dev.digest()["digest"]
            finally:
                dev.close()
        if d == self.old_d and st["generation"] == 2:
            got = "old"
        elif d == self.new_d and st["generation"] == 3:
            got = "new"
        else:
            got = "corrupt"
        want = "new" if (mode == "after" and n == self.n_ops - 1) else "old"
        return {"cut": n, "mode": mode, "outcome": got, "expected": want, "boot": st, "digest": f"{d:08x}"}


def power_cut_sweep(
    target_name: str,
    image,
    ref,
    samples,
    workdir,
    geo=None,
    lay=None,
    seed: int = 0,
    sample: int = 0,
    modes=MODES,
    timeout: float = 0.5,
    progress=None,
) -> dict:
    """The whole sweep (module docstring); returns the result (keys ``cuts``, ``restored_old``,
    ``restored_new``, ``corrupt`` first). ``sample``: cut at that many operation indices
    spread over the save instead of at every one."""
    for m in modes:
        if m not in MODES:
            raise EdgetpError(f"cut mode must be one of {MODES}, got {m!r}")
    t0 = time.perf_counter()
    sw = Sweep(target_name, image, ref, samples, workdir, seed, timeout, progress)
    say = sw.say
    base = sw.baseline()
    say(f"a save is {base['erases']} erases + {base['programs']} programs = {sw.n_ops} flash operations")
    if geo is not None and lay is not None:
        sw.twin_check(base["flash"], geo, ref.model_hash, lay)
        say("the flash image is the Python twin's (firmware_gen.store): generations 3 and 2, byte for byte")
    resumed = sw.resume(base["flash"])
    say(
        f"restart after the save: generation {resumed['boot']['generation']}, "
        f"{resumed['mismatches']} mismatches going on learning"
    )
    idx = cut_indices(sw.n_ops, sample)
    res = {"cuts": 0, "restored_old": 0, "restored_new": 0, "corrupt": 0, "misplaced": 0, "not_cut": 0}
    failures = []
    for k, n in enumerate(idx):
        for mode in modes:
            r = sw.one_cut(n, mode)
            res["cuts"] += 1
            if r["outcome"] == "not_cut":
                res["not_cut"] += 1
                failures.append(r)
                continue
            res[{"old": "restored_old", "new": "restored_new", "corrupt": "corrupt"}[r["outcome"]]] += 1
            if r["outcome"] == "corrupt":
                failures.append(r)
            elif r["outcome"] != r["expected"]:
                res["misplaced"] += 1
                failures.append(r)
        if (k + 1) % 100 == 0 or k + 1 == len(idx):
            say(
                f"  {k + 1}/{len(idx)} operation indices: {res['restored_old']} old, {res['restored_new']} new, "
                f"{res['corrupt']} corrupt, {res['misplaced']} misplaced"
            )
    res.update(
        {
            "target": target_name,
            "ops_per_save": {"erases": base["erases"], "programs": base["programs"], "total": sw.n_ops},
            "indices": len(idx),
            "modes": list(modes),
            "sampled": bool(sample and sample < sw.n_ops),
            "resume": resumed,
            "failures": failures[:20],
            "seconds": round(time.perf_counter() - t0, 1),
        }
    )
    return res
