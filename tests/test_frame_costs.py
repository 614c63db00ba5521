"""Per-frame cost statistics (deploy.frame_costs): the nearest-rank 99.9th percentile, the split of
training frames into learning and forward-only frames, the HIL summary that carries them and the
model card's sentence that shows them."""

import json

import numpy as np

from deploy.frame_costs import frame_summary, learning_mask, percentile_rank
from deploy.hil import _Costs


def test_the_percentile_is_a_measured_frame_by_nearest_rank():
    v = np.random.default_rng(0).permutation(np.arange(1, 2001))
    assert percentile_rank(v, 99.9) == 1998  # ceil(0.999 * 2000) = 1998th smallest
    assert percentile_rank(v[:999], 99.9) == v[:999].max()  # below 1,000 frames: the maximum
    assert percentile_rank(np.arange(1000), 99.9) == 998
    assert percentile_rank([5], 99.9) == 5 and percentile_rank([3, 1, 2], 50) == 2
    s = frame_summary(np.arange(1, 2001))
    assert (s["mean"], s["p999"], s["max"], s["min"], s["n"]) == (1000.5, 1998, 2000, 1, 2000)
    assert frame_summary([]) == {}


def test_learning_frames_restart_at_each_sample():
    # samples of 3 and 4 frames, learning every 2nd frame since each sample's reset
    assert learning_mask([0, 3], 7, 2).tolist() == [True, False, True, True, False, True, False]
    assert learning_mask([0], 4, 1).all()


def test_the_hil_summary_splits_learning_and_forward_frames():
    c = _Costs()
    c.add([100, 10, 101])  # learns at t = 0, 2
    c.add([102, 11])
    s = c.summary(res=5, window=2)
    assert s["learn"]["n"] == 3 and s["learn"]["mean"] == 5 * 101 and s["learn"]["max"] == 5 * 102
    assert s["forward"]["n"] == 2 and s["forward"]["max"] == 5 * 11
    assert s["p999"] == s["max"] == 5 * 102
    assert "learn" not in _Costs(values=[1, 2], starts=[0]).summary(1)


def test_the_card_shows_mean_p999_and_max_when_the_json_has_them(tmp_path):
    from edgetp.kws.card import device_texts

    (tmp_path / "device").mkdir()
    r = {
        "target": "qemu",
        "model": "m",
        "shots": 1,
        "samples": 3,
        "mismatches": 0,
        "counter": "instructions",
        "infer_step": {"mean": 1000, "p999": 1500, "max": 1600},
        "train_step": {
            "mean": 2000,
            "p999": 3000,
            "max": 3100,
            "learn": {"mean": 2500, "p999": 3000, "max": 3100},
            "forward": {"mean": 1100, "p999": 1400, "max": 1450},
        },
    }
    (tmp_path / "device" / "qemu.json").write_text(json.dumps(r))
    text = device_texts(tmp_path, "h")[0]
    assert "mean / p99.9 / max instructions: inference step 1,000 / 1,500 / 1,600" in text
    assert "learning step 2,500 / 3,000 / 3,100" in text and "forward-only training step 1,100 / 1,400 / 1,450" in text
    del r["infer_step"]["p999"]
    (tmp_path / "device" / "qemu.json").write_text(json.dumps(r))
    assert "one training step (10 ms frame) mean 2,000, max 3,100" in device_texts(tmp_path, "h")[0]
