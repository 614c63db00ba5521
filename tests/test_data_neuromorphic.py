"""SHD and N-MNIST through tonic, on small files written in each dataset's real format."""

import numpy as np
import pytest

from edgetp.errors import EdgetpError

from conftest import require_module  # noqa: E402

require_module("tonic")
h5py = require_module("h5py")

from edgetp.data import neuromorphic as nm  # noqa: E402


def write_shd(path, samples, labels, n_classes=20):
    """SHD's HDF5 layout: spikes/times (s, float32, ragged), spikes/units (uint16), labels, extra/."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(samples):
            times[i], units[i] = np.asarray(t, np.float32), np.asarray(u, np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        f.create_dataset("extra/keys", data=np.array([f"class{k}".encode() for k in range(n_classes)]))
        f.create_dataset("extra/speaker", data=np.arange(len(samples), dtype=np.uint16))


def write_nmnist_bin(path, x, y, p, t_us):
    """N-MNIST's 40-bit records: x, y, then polarity (bit 7) and a 23-bit timestamp in us."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t_us = np.asarray(t_us, np.int64)
    rec = np.zeros((len(x), 5), np.uint8)
    rec[:, 0], rec[:, 1] = x, y
    rec[:, 2] = (np.asarray(p) << 7) | ((t_us >> 16) & 0x7F)
    rec[:, 3], rec[:, 4] = (t_us >> 8) & 0xFF, t_us & 0xFF
    path.write_bytes(rec.tobytes())


def test_shd_binned_in_10_ms(tmp_path):
    rng = np.random.default_rng(0)
    s0 = (np.array([0.001, 0.004, 0.0125, 0.0125, 0.2]), np.array([3, 3, 699, 0, 5]))
    s1 = (np.sort(rng.uniform(0, 0.9, 300)), rng.integers(0, 700, 300))
    write_shd(tmp_path / "SHD" / "shd_train.h5", [s0, s1], [4, 19])
    ds = nm.shd(tmp_path)  # finds ROOT/SHD/ as tonic lays it out
    frames, label = ds[0]
    assert label == 4 and frames.shape == (21, 1, 700)  # 0..200 ms in 10 ms bins, last one partial
    assert frames[0, 0, 3] == 2 and frames[1, 0, 699] == 1 and frames[1, 0, 0] == 1 and frames[20, 0, 5] == 1
    assert frames.sum() == 5
    x, y = nm.dense(ds)
    assert x.shape == (2, 90, 700) and x.dtype == np.float32 and list(y) == [4, 19]
    assert x[1].sum() == 300 and x[0, 21:].sum() == 0
    x5, _ = nm.dense(ds, [1], n_steps=5)
    assert x5.shape == (1, 5, 700)


def test_nmnist_binned_in_1_ms(tmp_path):
    rng = np.random.default_rng(1)
    for digit in (2, 7):
        n = 50
        write_nmnist_bin(
            tmp_path / "Train" / str(digit) / f"0000{digit}.bin",
            rng.integers(0, 34, n),
            rng.integers(0, 34, n),
            rng.integers(0, 2, n),
            np.sort(rng.integers(0, 30000, n)),
        )
    write_nmnist_bin(tmp_path / "Test" / "5" / "00001.bin", [1, 2], [3, 4], [0, 1], [500, 1500])
    ds = nm.nmnist(tmp_path)
    assert len(ds) == 2
    frames, label = ds[0]
    assert label == 2 and frames.shape[1:] == (2, 34, 34) and frames.sum() == 50
    test = nm.nmnist(tmp_path, train=False)
    frames, label = test[0]
    assert label == 5 and frames.shape == (2, 2, 34, 34)
    assert frames[0, 0, 3, 1] == 1 and frames[1, 1, 4, 2] == 1  # (t, p, y, x)
    x, y = nm.dense(test)
    assert x.shape == (1, 2, 2 * 34 * 34)


def test_missing_files_never_download(tmp_path, monkeypatch):
    import tonic

    def no_network(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr(tonic.datasets.SHD, "download", no_network)
    with pytest.raises(EdgetpError, match="never downloads"):
        nm.shd(tmp_path)
    with pytest.raises(EdgetpError, match="never downloads"):
        nm.nmnist(tmp_path)
    (tmp_path / "Train").mkdir()
    with pytest.raises(EdgetpError, match="no .bin files"):
        nm.nmnist(tmp_path)
    (tmp_path / "shd_test.h5").write_text("not hdf5")
    with pytest.raises(EdgetpError, match="not a readable SHD"):
        nm.shd(tmp_path, train=False)
