"""pretrain + finetune --kws end to end on a small corpus the test generates."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tone_corpus import make_corpus  # noqa: E402

from edgetp.tp.schedule import cosine_lr  # noqa: E402

HELD = "0a1b2c3d"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    make_corpus(root)
    home = tmp_path_factory.mktemp("home")
    return root, home


@pytest.fixture(scope="module")
def pretrained(setup):
    from conftest import run_cli

    root, home = setup
    model = home / "m.npz"
    r = run_cli(
        "pretrain",
        "--kws",
        "--data-root",
        root,
        "--net",
        "120-24r-36",
        "--epochs",
        "2",
        "--batch",
        "4",
        "--hold-out",
        HELD,
        "--out",
        model,
        "--json",
        home / "pre.json",
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    return model


def test_cosine_schedule_anneals_to_a_quarter():
    assert cosine_lr(1e-3, 0, 10) == 1e-3
    assert cosine_lr(1e-3, 10, 10) == pytest.approx(0.25e-3)
    assert cosine_lr(1e-3, 5, 10) == pytest.approx((1e-3 + 0.25e-3) / 2)


def test_held_out_speaker_absent_from_pretraining(setup, pretrained):
    from edgetp.cli.pretrain import pretrain_indices
    from edgetp.data.gsc import load_corpus
    from edgetp.model import load_model

    root, _ = setup
    c = load_corpus(root)
    pre, val = pretrain_indices(c, HELD)
    assert len(pre) > 0
    assert all(c.utterances[i].speaker != HELD for i in np.concatenate([pre, val]))
    assert any(u.speaker == HELD for u in c.utterances)
    m = load_model(pretrained)
    assert m.recipe["held_out_speaker"] == HELD and m.metrics["pretrain_utterances"] == len(pre)
    assert m.norm_scale.shape == (120,)


def test_pretrain_records_the_device_quantization(setup, cli, tmp_path):
    """`pretrain --record-fixed` writes recipe["fixed"] (what export --c / hil / finetune --fixed use),
    calibrated on pretraining utterances; models/rebuild.sh passes it for kws-mcu."""
    from edgetp.data.gsc import load_corpus
    from edgetp.kws.fixed_protocol import fixed_settings
    from edgetp.model import load_model
    from firmware_gen.defaults import DEFAULTS

    root, home = setup
    r = cli(
        "pretrain",
        "--kws",
        "--data-root",
        root,
        "--net",
        "120-8r-36",
        "--epochs",
        "0",
        "--hold-out",
        HELD,
        "--record-fixed",
        "--out",
        tmp_path / "m.npz",
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    m = load_model(tmp_path / "m.npz")
    fixed = m.recipe["fixed"]
    assert fixed == fixed_settings(m, load_corpus(root), HELD)
    assert {k: fixed[k] for k in ("wbits", "xbits", "headroom")} == {
        k: DEFAULTS[k] for k in ("wbits", "xbits", "headroom")
    }
    assert 0 <= fixed["fx"] <= 24 and fixed["targets"] == "classes"
    assert m.recipe["command"].endswith("--record-fixed")
    assert "mask" not in m.recipe["command"]  # augmentation left off is left out of the command
    assert "--record-fixed" in (Path(__file__).parent.parent / "models" / "rebuild.sh").read_text()


def test_support_and_query_never_overlap(setup):
    from edgetp.data.gsc import load_corpus
    from edgetp.data.splits import speaker_split

    root, _ = setup
    c = load_corpus(root)
    for seed in range(3):
        for shots in (1, 5, "all"):
            sp = speaker_split(c, HELD, shots, seed)
            assert not set(sp.support) & set(sp.query)
            assert all(c.utterances[i].speaker == HELD for i in np.concatenate([sp.support, sp.query]))
            assert all(c.utterances[i].speaker != HELD for i in sp.test)
    a, b = speaker_split(c, HELD, 1, 0), speaker_split(c, HELD, 1, 1)
    assert not np.array_equal(a.support, b.support)  # seeds resample the support set


def test_rehearsal_draws_other_speakers_pretraining_utterances(setup):
    from edgetp.audio.frontend import NormConstants
    from edgetp.data.gsc import load_corpus
    from edgetp.kws.data import speaker_data, training_set

    root, home = setup
    c = load_corpus(root)
    norm = NormConstants(np.ones(120, np.float32))
    d0 = speaker_data(c, HELD, 1, 0, norm, home / "cache", rehearsal=0)
    assert d0.rehearsal is None and training_set(d0) is d0.support
    a = speaker_data(c, HELD, 1, 0, norm, home / "cache", rehearsal=2)
    b = speaker_data(c, HELD, 1, 1, norm, home / "cache", rehearsal=2)
    n = len(a.support[1])
    assert len(a.rehearsal[1]) == 2 * n
    xs, ys = training_set(a)
    assert len(ys) == 3 * n and np.array_equal(xs[:n], a.support[0]) and np.array_equal(xs[n:], a.rehearsal[0])
    # the draw comes from the pretrain split (never the held-out speaker) and differs per seed
    assert set(a.rehearsal_idx) <= set(a.split.pretrain) and len(set(a.rehearsal_idx)) == 2 * n
    assert all(c.utterances[i].speaker != HELD for i in a.rehearsal_idx)
    assert np.array_equal(a.rehearsal[1], c.labels[a.rehearsal_idx])
    assert not np.array_equal(a.rehearsal_idx, b.rehearsal_idx)


def test_finetune_cli_json_contract_and_plot(setup, pretrained, cli):
    root, home = setup
    out, plot, saved = home / "ft.json", home / "ft.png", home / "tuned.npz"
    r = cli(
        "finetune",
        "--kws",
        "--model",
        pretrained,
        "--data-root",
        root,
        "--shots",
        "5",
        "--seeds",
        "2",
        "--set",
        "epochs=1",
        "--set",
        "lr=1e-3",
        "--json",
        out,
        "--plot",
        plot,
        "--set",
        f"save={saved}",
        "--quiet",
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    for k in (
        "speaker",
        "shots",
        "seeds",
        "query_acc_before",
        "query_acc_after",
        "query_acc_before_std",
        "query_acc_after_std",
        "finetune_only_acc",
        "test_acc_before",
        "test_acc_after",
        "per_seed",
    ):
        assert k in d, k
    assert d["speaker"] == HELD and d["shots"] == 5 and d["seeds"] == 2 and len(d["per_seed"]) == 2
    for s in d["per_seed"]:
        for k in ("query_acc_before", "query_acc_after", "finetune_only_acc", "test_acc_before", "test_acc_after"):
            assert 0 <= s[k] <= 100
        assert s["support"] == 4 * 5 and s["query"] == 4 * 2
    # fine-tuning helps the held-out speaker: the 2-seed mean gains >= 10 pp. Measured (tone corpus,
    # this pretraining with --seed 0/1/2, fine-tuning seeds 0-5, 1 epoch, lr 1e-3): the 2-seed mean gain
    # is 12.5 / 50 / 37.5 pp, before is 25 % throughout; a query set is 8 utterances (12.5 pp steps).
    assert d["query_acc_after"] >= d["query_acc_before"] + 10, d
    assert plot.stat().st_size > 10_000
    from edgetp.model import load_model

    m = load_model(saved)
    assert m.recipe["finetuned_on"] == HELD
    assert "query" in r.stdout and "before" in r.stdout


@pytest.mark.parametrize(
    "flags",
    [
        ["targets=batch", "batch=4"],
        ["train=readout"],
        ["optimizer=sgd", "lr=0.01"],
        ["rehearsal=2"],
        ["rehearsal=1.5", "batch=2", "--json", "{home}/reh.json"],
        ["update_every=2", "--fixed"],
        ["update_every=3"],
        ["shift=4", "noise=0.1", "warp=0.1", "--json", "{home}/aug.json"],
    ],
)
def test_finetune_options(setup, pretrained, cli, flags):
    root, home = setup
    flags = [f.format(home=home) for f in flags]
    items = [f for f in flags if "=" in f]
    flags = [g for f in items for g in ("--set", f)] + [f for f in flags if f not in items]
    r = cli(
        "finetune",
        "--kws",
        "--model",
        pretrained,
        "--data-root",
        root,
        "--shots",
        "1",
        "--seeds",
        "1",
        "--set",
        "epochs=1",
        "--set",
        "baseline=false",
        "--quiet",
        *flags,
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    if "rehearsal=2" in items:
        assert "rehearsal" in r.stdout
    if "--json" in flags:
        d = json.loads((home / "reh.json").read_text())
        assert d["recipe"]["rehearsal"] == 1.5 and d["per_seed"][0]["rehearsal"] == round(1.5 * 4)
    if any(i.startswith("update_every=") for i in items):
        assert f"update every {items[0].split('=')[1]} frames" in r.stdout
    if "warp=0.1" in items:
        assert "augmented (shift 4, noise 0.1, warp 0.1)" in r.stdout
        rec = json.loads((home / "aug.json").read_text())["recipe"]
        assert (rec["shift"], rec["noise"], rec["warp"]) == (4, 0.1, 0.1)


@pytest.mark.parametrize(
    "flags,expect",
    [
        (["--shots", "zero"], "--shots"),
        (["--speaker", "deadbeef"], "deadbeef"),
        (["--model", "no-such-model"], "no model named"),
        (["--seeds", "0"], "--seeds"),
        (["--set", "rehearsal=-1"], "--set rehearsal=-1: rehearsal must be >= 0"),
        (["--set", "rehearsal=nan"], "rehearsal must be a finite number"),
        (["--set", "update_every=0"], "update_every must be >= 1"),
        (["--set", "shift=-2"], "shift must be >= 0"),
        (["--set", "noise=nan"], "noise"),
        (["--set", "warp=0.5"], "warp must be < 0.5"),
        (["--set", "warp=0.1", "--fixed"], "--fixed"),
        (["--set", "time_mask=-1"], "time_mask must be >= 0"),
        (["--set", "freq_mask=2.5"], "freq_mask must be a int"),
        (["--set", "freq_mask=4", "--fixed"], "freq_mask with --fixed"),
        (["--set", "epochs=1.5"], "--set epochs=1.5: epochs must be a int"),
        (["--set", "colour=red"], "unknown setting 'colour'"),
        (["--lr", "1e-3"], '--lr moved to the recipe file: --recipe F with {"lr": ...}'),
        (["--no-baseline"], "--no-baseline moved to the recipe file"),
    ],
)
def test_finetune_user_errors(setup, pretrained, cli, flags, expect):
    root, home = setup
    args = ["finetune", "--kws", "--data-root", root, "--quiet"]
    if "--model" not in flags:
        args += ["--model", pretrained]
    r = cli(*args, *flags, env={"EDGETP_HOME": str(home)})
    assert r.returncode == 2 and "Traceback" not in r.stderr and expect in r.stderr, r.stderr


def test_finetune_missing_data_root_says_how_to_make_it(cli, tmp_path, pretrained):
    r = cli("finetune", "--kws", "--model", pretrained, env={"EDGETP_HOME": str(tmp_path)})
    assert r.returncode == 2 and "synth-kws" in r.stderr


def test_finetune_fixed_runs_the_same_protocol(setup, pretrained, cli, tmp_path):
    root, home = setup
    out = tmp_path / "fx.json"
    r = cli(
        "finetune",
        "--kws",
        "--fixed",
        "--model",
        pretrained,
        "--data-root",
        root,
        "--shots",
        "1",
        "--seeds",
        "1",
        "--set",
        "epochs=1",
        "--quiet",
        "--json",
        out,
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["fixed"] is True and d["per_seed"][0]["wbits"] == 16
    assert d["int_optimizer"] == "colnorm" and "integer colnorm" in r.stdout
    assert "integer rule" in r.stdout


def test_augment_shifts_with_zero_fill_and_keeps_shape():
    from edgetp.kws.train import augment

    x = np.arange(1, 4 * 6 + 1, dtype=np.float32).reshape(4, 6, 1)
    y = augment(x, np.random.default_rng(5), 2, 0.0)
    assert y.shape == x.shape
    for a, b in zip(x[..., 0], y[..., 0]):
        nz = b[b != 0]
        assert len(nz) >= 4 and np.all(np.diff(nz) == 1)  # a contiguous run of the original
        assert set(nz) <= set(a)
    assert not np.array_equal(y, x)
    z = augment(x, np.random.default_rng(0), 0, 0.5)
    assert 0.2 < np.std(z - x) < 0.8


def test_mel_warp_moves_each_block_along_the_mel_axis():
    """Factor 1 is the identity; factor f makes band b read band b*f (interpolated), in every 40-band block."""
    from edgetp.kws.train import mel_warp

    ramp = np.tile(np.arange(40, dtype=np.float32), 3)[None, None, :].repeat(2, 1)  # [log-mel, d, dd] ramps
    assert np.array_equal(mel_warp(ramp, [1.0]), ramp)
    w = mel_warp(ramp, [0.9])
    assert np.allclose(w[0, 0, :40], 0.9 * np.arange(40), atol=1e-5)
    assert np.allclose(w[0, 0, 40:80], w[0, 0, :40]) and np.allclose(w[0, 0, 80:], w[0, 0, :40])
    up = mel_warp(ramp, [1.1])[0, 0, :40]  # clamped at the top band
    assert np.allclose(up[:36], 1.1 * np.arange(36), atol=1e-4) and np.all(up[36:] == 39)


def test_spec_masks_zero_one_run_of_frames_and_the_same_bands_of_each_block():
    """SpecAugment's masks: per utterance one run of <= N whole frames and one run of <= N mel bands, zeroed in the
    log-mel and both deltas alike; nothing else changes, and a mask left off draws nothing from the generator."""
    from edgetp.kws.train import augment, runs

    x = np.random.default_rng(1).uniform(1, 2, (64, 101, 120)).astype(np.float32)  # no zeros of its own
    y = augment(x, np.random.default_rng(2), 0, 0.0, time_mask=15, freq_mask=6)
    zero = y == 0
    assert np.array_equal(y[~zero], x[~zero])
    widths_t, widths_f = [], []
    for z in zero:
        frames = np.flatnonzero(z.all(1))
        cols = np.flatnonzero(z.all(0))
        # every zero lies in a masked frame or a masked column, and each mask is one contiguous run
        assert np.array_equal(z, z.all(1)[:, None] | z.all(0)[None, :])
        assert len(frames) == 0 or np.all(np.diff(frames) == 1)
        bands = cols[cols < 40]
        assert np.array_equal(cols, np.concatenate([bands, bands + 40, bands + 80]))
        assert len(bands) == 0 or np.all(np.diff(bands) == 1)
        widths_t.append(len(frames))
        widths_f.append(len(bands))
    assert max(widths_t) == 15 and max(widths_f) == 6 and min(widths_t) == 0  # the whole range 0..N is drawn
    assert len(set(widths_t)) > 8 and len(set(widths_f)) > 4
    # off: the same draws as without the option (recipes recorded before it replay exactly)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert np.array_equal(augment(x, a, 2, 0.1), augment(x, b, 2, 0.1, time_mask=0, freq_mask=0))
    assert a.random() == b.random()
    # a run never leaves its axis, even when N is longer than the axis
    assert runs(np.random.default_rng(0), 200, 5, 40).sum(1).max() <= 5


def test_check_augment_refuses_bad_masks():
    from edgetp.errors import EdgetpError
    from edgetp.kws.train import Recipe, check_augment

    check_augment(0, 0.0, 0.0, 30, 39)
    for tm, fm in [(-1, 0), (0, -2), (True, 0), (0, 1.5), (float("nan"), 0)]:
        with pytest.raises(EdgetpError, match="mask"):
            check_augment(0, 0.0, 0.0, tm, fm)
    with pytest.raises(EdgetpError, match="time_mask"):
        Recipe(time_mask=-3).check()


def test_finetune_augmentation_changes_learning_and_is_seeded():
    from edgetp.kws.train import Recipe, fit
    from edgetp.tp import init_params, parse_net

    cfg = parse_net("120-8r-4")
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(6, 12, 120)).astype(np.float32), np.arange(6) % 4

    def trained(**aug):
        p = init_params(cfg, 0, np.float32)
        fit(p, cfg, xs, ys, Recipe(epochs=2, lr=1e-3, batch=2, **aug), progress=False)
        return p.W[-1]

    plain, warped = trained(), trained(warp=0.2, shift=2, noise=0.1)
    assert not np.allclose(plain, warped)
    assert np.array_equal(warped, trained(warp=0.2, shift=2, noise=0.1))
    masked = trained(time_mask=4, freq_mask=5)
    assert not np.allclose(plain, masked) and np.array_equal(masked, trained(time_mask=4, freq_mask=5))


def test_pretrain_records_finetune_defaults_that_finetune_uses(setup, cli, tmp_path):
    root, home = setup
    env = {"EDGETP_HOME": str(home)}
    model = tmp_path / "ft.npz"
    r = cli(
        "pretrain",
        "--kws",
        "--data-root",
        root,
        "--net",
        "120-8r-36",
        "--epochs",
        "1",
        "--batch",
        "8",
        "--hold-out",
        HELD,
        "--ft",
        "batch=2",
        "--ft",
        "rehearsal=1.5",
        "--ft",
        "epochs=1",
        "--ft",
        "update_every=2",
        "--ft",
        "warp=0.05",
        "--time-mask",
        "3",
        "--freq-mask",
        "2",
        "--out",
        model,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    from edgetp.model import load_model

    m = load_model(model)
    assert (m.recipe["time_mask"], m.recipe["freq_mask"]) == (3, 2)
    assert "--time-mask 3 --freq-mask 2" in m.recipe["command"]
    assert m.recipe["finetune"] == {"batch": 2, "rehearsal": 1.5, "epochs": 1, "update_every": 2, "warp": 0.05}
    assert "--ft batch=2 --ft rehearsal=1.5 --ft epochs=1 --ft update_every=2 --ft warp=0.05" in m.recipe["command"]
    out = tmp_path / "ft.json"
    r = cli(
        "finetune",
        "--kws",
        "--model",
        model,
        "--data-root",
        root,
        "--shots",
        "1",
        "--seeds",
        "1",
        "--set",
        "baseline=false",
        "--quiet",
        "--set",
        "batch=1",
        "--json",
        out,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())["recipe"]
    # the flag wins, the rest is the model's
    assert (rec["batch"], rec["rehearsal"], rec["epochs"], rec["update_every"]) == (1, 1.5, 1, 2)
    assert rec["warp"] == 0.05 and "warp 0.05" in r.stdout
    # the integer rule learns from the utterances as recorded: the float recipe's augmentation is not applied
    r = cli(
        "finetune",
        "--kws",
        "--fixed",
        "--model",
        model,
        "--data-root",
        root,
        "--shots",
        "1",
        "--seeds",
        "1",
        "--set",
        "baseline=false",
        "--quiet",
        "--json",
        out,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())["recipe"]
    assert (rec["shift"], rec["noise"], rec["warp"], rec["update_every"]) == (
        0,
        0.0,
        0.0,
        2,
    ) and "augmented" not in r.stdout


@pytest.mark.parametrize(
    "item",
    [
        "batch",
        "colour=red",
        "batch=two",
        "rehearsal=-1",
        "optimizer=lion",
        "update_every=0",
        "warp=0.9",
        "shift=-1",
        "noise=inf",
        "time_mask=-1",
        "freq_mask=x",
    ],
)
def test_pretrain_rejects_bad_finetune_defaults_before_training(setup, cli, tmp_path, item):
    root, home = setup
    r = cli(
        "pretrain",
        "--kws",
        "--data-root",
        root,
        "--hold-out",
        HELD,
        "--ft",
        item,
        "--out",
        tmp_path / "x.npz",
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--ft" in r.stderr, r.stderr
    assert not (tmp_path / "x.npz").exists()


def test_pretrain_from_keeps_the_weights_and_records_new_settings(setup, pretrained, cli, tmp_path):
    """--from derives a device variant: the same network, weights and normalisation, new --ft / --device settings."""
    from edgetp.model import load_model

    root, home = setup
    out = tmp_path / "derived.npz"
    r = cli(
        "pretrain",
        "--kws",
        "--from",
        pretrained,
        "--data-root",
        root,
        "--ft",
        "train=readout",
        "--ft",
        "lr=2e-4",
        "--device",
        "hbits=8",
        "--device",
        "frozen_hidden=true",
        "--out",
        out,
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    src, m = load_model(pretrained), load_model(out)
    for (n, a), (n2, b) in zip(src.params.named().items(), m.params.named().items()):
        assert n == n2 and np.array_equal(a, b), n
    assert np.array_equal(src.norm_scale, m.norm_scale) and m.frontend == src.frontend and m.metrics == src.metrics
    assert m.recipe["finetune"] == {"train": "readout", "lr": 2e-4}
    assert m.recipe["fixed"]["hbits"] == 8 and m.recipe["fixed"]["frozen_hidden"] is True
    assert m.recipe["fixed"]["wbits"] == 16 and isinstance(m.recipe["fixed"]["fx"], int)
    assert m.recipe["derived_from"]["hash"] == src.hash() and m.hash() != src.hash()
    # the source is named as a portable path (it sits in the data home here)
    assert Path(pretrained).parent == Path(home)
    shown = f"$EDGETP_HOME/{Path(pretrained).name}"
    assert m.recipe["command"].startswith(f"edgetp pretrain --kws --from {shown} --ft train=readout")
    assert m.recipe["pretrain_speakers"] == src.recipe["pretrain_speakers"]
    # deriving again (here in place) replaces the settings and still names the pretraining run, as deriving the
    # run's output directly does
    again = tmp_path / "again.npz"
    again.write_bytes(out.read_bytes())
    r = cli("pretrain", "--kws", "--from", again, "--ft", "lr=3e-4", "--out", again, env={"EDGETP_HOME": str(home)})
    assert r.returncode == 0, r.stderr
    direct = tmp_path / "direct.npz"
    r = cli(
        "pretrain", "--kws", "--from", pretrained, "--ft", "lr=3e-4", "--out", direct, env={"EDGETP_HOME": str(home)}
    )
    assert r.returncode == 0, r.stderr
    a, b = load_model(again), load_model(direct)
    assert a.recipe["derived_from"] == b.recipe["derived_from"] == m.recipe["derived_from"]
    assert (
        a.recipe["command"] != b.recipe["command"] and a.recipe["finetune"] == {"lr": 3e-4} and "fixed" not in a.recipe
    )


@pytest.mark.parametrize(
    "flags,expect",
    [
        (["--epochs", "3"], "--epochs"),  # --from trains nothing
        (["--device", "frozen_hidden=true"], "train=readout"),  # a frozen hidden layer cannot learn
        (["--device", "hbits=4"], "hbits"),
        (["--device", "colour=red"], "--device"),
        (["--fixed", "hbits=8"], "--fixed is now --device"),  # the old spelling says the new one
    ],
)
def test_pretrain_from_rejects_what_it_cannot_record(setup, pretrained, cli, tmp_path, flags, expect):
    root, home = setup
    r = cli(
        "pretrain",
        "--kws",
        "--from",
        pretrained,
        "--data-root",
        root,
        *flags,
        "--out",
        tmp_path / "x.npz",
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and expect in r.stderr, r.stderr
    assert not (tmp_path / "x.npz").exists()
