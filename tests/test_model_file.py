"""The model file: round trip, and clear errors for corrupt, truncated or foreign files."""

import json

import numpy as np
import pytest

from edgetp.errors import EdgetpError
from edgetp.model import Model, load_model, save_model
from edgetp.tp import init_params, parse_net


@pytest.fixture
def model():
    cfg = parse_net("10-12r-4")
    return Model(
        cfg,
        init_params(cfg, 0),
        ["a", "b", "c", "d"],
        {"n_mels": 40},
        {"epochs": 1},
        {"acc": 50.0},
        np.ones(10, np.float32),
    )


def test_round_trip(model, tmp_path):
    h = save_model(model, tmp_path / "m.npz")
    m = load_model(tmp_path / "m.npz")
    assert m.hash() == h == model.hash()
    assert m.cfg == model.cfg and m.labels == model.labels and m.recipe == {"epochs": 1}
    for a, b in zip(m.params.trainable(), model.params.trainable()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m.params.S_rec, model.params.S_rec)
    np.testing.assert_array_equal(m.norm_scale, model.norm_scale)


def test_errors(model, tmp_path):
    path = tmp_path / "m.npz"
    save_model(model, path)
    raw = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "text.npz").write_text("hello")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    edited = dict(arrays, W0=arrays["W0"] + 1)
    np.savez(tmp_path / "edited.npz", **edited)
    meta = json.loads(arrays["meta"].tobytes())
    meta["version"] = 99
    np.savez(tmp_path / "future.npz", **dict(arrays, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8)))
    np.savez(tmp_path / "nometa.npz", **{k: v for k, v in arrays.items() if k != "meta"})
    np.savez(tmp_path / "noW1.npz", **{k: v for k, v in arrays.items() if k != "W1"})
    np.savez(tmp_path / "pickled.npz", meta=np.array([object()], dtype=object))
    cases = {
        "trunc": "not a",
        "text": "not an .npz",
        "edited": "hash mismatch",
        "future": "version 99",
        "nometa": "no 'meta'",
        "noW1": "lacks 'W1'",
        "pickled": "not a plain numeric array",
    }
    for name, expect in cases.items():
        with pytest.raises(EdgetpError, match=expect):
            load_model(tmp_path / f"{name}.npz")
    with pytest.raises(EdgetpError, match="no model named"):
        load_model("no-such-model")


def test_loading_never_unpickles(tmp_path):
    """A file carrying a pickled payload is refused, not executed."""

    class Boom:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('pwned')" % str(tmp_path / "pwned"),))

    np.savez(tmp_path / "evil.npz", meta=np.array([Boom()], dtype=object))
    with pytest.raises(EdgetpError):
        load_model(tmp_path / "evil.npz")
    assert not (tmp_path / "pwned").exists()
