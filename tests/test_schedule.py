"""One fine-tuning schedule: finetune --fixed, verify-c's device script and the HIL session
train the same samples in the same order at the same rates (edgetp.tp.schedule)."""

import sys
from pathlib import Path

import numpy as np
import pytest

import edgetp.fixed.finetune as ff
from deploy.reference import tiny_qmodel
from edgetp.errors import EdgetpError
from edgetp.fixed.update_q import lr_code
from edgetp.tp.schedule import epoch_lrs, finetune_epochs
from firmware_gen.script_finetune import finetune_script

sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy_fake"))
from deploy_helpers import FakeReference, device, fake_data  # noqa: E402

from deploy.hil import run_session  # noqa: E402


def _order(plan):
    return [int(i) for ep in plan for b in ep.batches for i in b]


def test_every_epoch_is_a_seeded_permutation_in_sorted_batches_at_the_annealed_rate():
    plan = finetune_epochs(10, 3, seed=4, batch=3, lr=1e-3)
    assert [ep.lr for ep in plan] == epoch_lrs(1e-3, 3)
    for ep in plan:
        assert sorted(np.concatenate(ep.batches).tolist()) == list(range(10))
        assert [len(b) for b in ep.batches] == [3, 3, 3, 1]
        assert all(np.array_equal(b, np.sort(b)) for b in ep.batches)
    assert _order(plan) == _order(finetune_epochs(10, 3, seed=4, batch=3, lr=1e-3))
    assert _order(plan) != _order(finetune_epochs(10, 3, seed=5, batch=3, lr=1e-3))
    assert [ep.lr for ep in finetune_epochs(4, 2, seed=0)] == [None, None]


@pytest.mark.parametrize("args", [(0, 1, 0), (3, -1, 0), (3, 1, 0, 0)])
def test_an_impossible_run_is_refused(args):
    with pytest.raises(EdgetpError, match="fine-tuning run"):
        finetune_epochs(*args)


def test_finetune_fixed_trains_the_schedule(monkeypatch):
    qm = tiny_qmodel(n_in=6, hidden=(5,), n_out=3)
    xs = (np.arange(7)[:, None, None] * np.ones((7, 4, 6))).astype(qm.xdtype)  # integer: taken as is
    seen = []
    monkeypatch.setattr(
        ff,
        "train_sequence_q",
        lambda qm, x, y, opt, *a: seen.append(((opt.lr_m, opt.lr_e), [int(v) for v in x[:, 0, 0]])),
    )
    ff.finetune_fixed(qm, xs, np.arange(7) % 3, epochs=3, lr=2e-3, batch=2, seed=9)
    plan = finetune_epochs(7, 3, seed=9, batch=2, lr=2e-3)
    assert seen == [(lr_code(ep.lr), b.tolist()) for ep in plan for b in ep.batches]


def test_the_device_script_trains_the_schedule():
    xs = np.arange(5)[:, None, None] * np.ones((5, 2, 3), dtype=np.int16)
    ops = finetune_script(xs, np.arange(5) % 2, epochs=2, lr=1e-3, seed=3, evaluate=False).ops
    plan = finetune_epochs(5, 2, seed=3, batch=1, lr=1e-3)
    assert [op[1:] for op in ops if op[0] == "lr"] == [lr_code(ep.lr) for ep in plan]
    trained = [int(op[1][0]) for k, op in enumerate(ops) if op[0] == "train" and ops[k - 1][0] == "reset"]
    assert trained == _order(plan)


class _Recording(FakeReference):
    def init(self, seed):
        super().init(seed)
        self.order = []

    def train_sample(self, xs, label):
        self.order.append(int(xs[0, 0]))
        super().train_sample(xs, label)


@pytest.mark.needs("cc")
def test_the_hil_session_trains_the_schedule():
    (sx, sy), qry = fake_data(n_support=6)
    sx[:, 0, 0] = np.arange(6)  # sample i starts with the value i
    ref = _Recording()
    with device() as (_, dev):
        res = run_session(dev, ref, (sx, sy), qry, epochs=2, seed=11)
    assert res["mismatches"] == 0
    assert ref.order == _order(finetune_epochs(6, 2, seed=11))
