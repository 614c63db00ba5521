"""`edgetp detect` and `edgetp detect --eval` on the hand-wired tone model (tests/detect_models.py): detections,
JSON, plots, the integer path, a reproducible evaluation stream, and clear errors for bad input."""

import json

import numpy as np
import pytest
from detect_models import LABELS, OTHER, WORDS, tone, tone_model, tone_stream

from edgetp.audio.wav import write_wav16
from edgetp.cli import main
from edgetp.model import save_model

SR = 16000


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("detect")
    save_model(tone_model(), d / "tone.npz")
    wave, events = tone_stream(WORDS, seed=1)
    write_wav16(d / "long.wav", wave)
    # a GSC-layout corpus of tones: two "speakers" per word, all in the testing list; a noise folder
    root = d / "corpus"
    names = []
    for w in WORDS:
        (root / w).mkdir(parents=True)
        for s in ("aaaa0001", "bbbb0002"):
            write_wav16(root / w / f"{s}_nohash_0.wav", np.pad(tone(w, amp=0.2), (4000, 4000)))
            names.append(f"{w}/{s}_nohash_0.wav")
    (root / "testing_list.txt").write_text("\n".join(names) + "\n")
    (root / "validation_list.txt").write_text("")
    (d / "noise").mkdir()
    write_wav16(d / "noise" / "white.wav", 0.1 * np.random.default_rng(0).standard_normal(3 * SR))
    return d, events


def test_detect_reports_the_words_at_their_times(files, capsys):
    d, events = files
    assert (
        main(
            [
                "detect",
                "--model",
                str(d / "tone.npz"),
                str(d / "long.wav"),
                "--json",
                str(d / "det.json"),
                "--plot",
                str(d / "det.png"),
            ]
        )
        == 0
    )
    out = json.loads((d / "det.json").read_text())
    got = [(r["word"], r["time_s"]) for r in out["detections"]]
    want = [(w, a / SR, b / SR) for w, a, b in events if w != OTHER]
    assert [w for w, _ in got] == [w for w, _, _ in want]
    assert all(a <= t <= b + 0.5 for (_, t), (_, a, b) in zip(got, want))
    assert (d / "det.png").stat().st_size > 10_000 and "10 detections" in capsys.readouterr().out
    assert out["frontend"]["decay"] == 2 and out["frontend"]["ahead"] == 0 and out["frontend"]["latency_frames"] == 4
    assert (
        main(["detect", "--model", str(d / "tone.npz"), "--fixed", str(d / "long.wav"), "--json", str(d / "detq.json")])
        == 0
    )
    q = json.loads((d / "detq.json").read_text())
    assert q["fixed"] and [(r["word"], r["time_s"]) for r in q["detections"]] == got


def test_detect_eval_scores_a_reproducible_stream(files):
    d, _ = files
    args = [
        "detect",
        "--eval",
        "--model",
        str(d / "tone.npz"),
        "--data-root",
        str(d / "corpus"),
        "--noise",
        str(d / "noise"),
        "--snr",
        "30",
        "--minutes",
        "1.5",
        "--seed",
        "3",
    ]
    assert main(args + ["--json", str(d / "e1.json"), "--plot", str(d / "e1.png"), "--save-wav", str(d / "e.wav")]) == 0
    assert main(args + ["--json", str(d / "e2.json")]) == 0
    e1, e2 = (json.loads((d / f).read_text()) for f in ("e1.json", "e2.json"))
    assert e1["overall"] == e2["overall"] and e1["overall"]["occurrences"] >= 15
    assert e1["overall"]["miss_rate"] == 0.0 and e1["overall"]["false_alarms"] == 0
    assert e1["det"][0]["threshold"] == 0.0 and len(e1["det"]) > 5
    assert e1["at_target"]["fa_per_hour"] <= 2.0 and e1["at_target"]["miss_rate"] == 0.0
    assert (e1["frontend"]["decay"], e1["frontend"]["ahead"], e1["frontend"]["latency_frames"]) == (2, 0, 4)
    assert (d / "e1.png").stat().st_size > 10_000 and (d / "e.wav").stat().st_size > 1.4 * 60 * SR * 2


def test_thresholds_per_word_and_from_the_model(files, tmp_path, capsys):
    d, _ = files
    assert (
        main(
            [
                "detect",
                "--model",
                str(d / "tone.npz"),
                str(d / "long.wav"),
                "--threshold",
                '{"yes": 1000}',
                "--json",
                str(tmp_path / "a.json"),
            ]
        )
        == 0
    )
    words = [r["word"] for r in json.loads((tmp_path / "a.json").read_text())["detections"]]
    assert "yes" not in words and len(words) == 9
    m = tone_model()
    m.recipe["detect"] = {"threshold": 1000.0}
    save_model(m, tmp_path / "high.npz")
    assert main(["detect", "--model", str(tmp_path / "high.npz"), str(d / "long.wav")]) == 0
    assert "0 detections" in capsys.readouterr().out


def test_eval_on_given_speakers(files, tmp_path, capsys):
    d, _ = files
    args = [
        "detect",
        "--eval",
        "--model",
        str(d / "tone.npz"),
        "--data-root",
        str(d / "corpus"),
        "--minutes",
        "0.5",
        "--speaker",
        "aaaa0001",
        "--json",
        str(tmp_path / "s.json"),
    ]
    assert main(args) == 2 and "--allow-seen-speaker" in capsys.readouterr().err  # the model records no speakers
    assert main(args + ["--allow-seen-speaker"]) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    assert out["speakers"] == ["aaaa0001"] and out["allow_seen_speaker"] and out["overall"]["occurrences"] > 3


@pytest.mark.parametrize(
    "case, match",
    [("not-wav", "not a WAV"), ("rate", "16000 Hz"), ("short", "at least one second"), ("empty", "empty")],
)
def test_bad_wavs_are_clear_errors(files, tmp_path, capsys, case, match):
    d, _ = files
    p = tmp_path / "x.wav"
    if case == "not-wav":
        p.write_text("hello")
    elif case == "rate":
        write_wav16(p, np.zeros(3 * 8000), sr=8000)
    elif case == "short":
        write_wav16(p, np.zeros(8000))
    else:
        write_wav16(p, np.zeros(0))
    assert main(["detect", "--model", str(d / "tone.npz"), str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR ") and match in err and "Traceback" not in err


def test_bad_models_and_options_are_clear_errors(files, tmp_path, capsys):
    d, _ = files
    m = tone_model()
    m.frontend["per_utterance"] = True
    save_model(m, tmp_path / "std.npz")
    m.frontend.update(per_utterance=False, running_max_ahead=201)
    save_model(m, tmp_path / "far.npz")
    cases = [
        (["--model", str(tmp_path / "std.npz"), str(d / "long.wav")], "per_utterance"),
        (["--model", str(tmp_path / "far.npz"), str(d / "long.wav")], "running_max_ahead must be"),
        (["--model", str(d / "tone.npz"), str(d / "long.wav"), "--threshold", "{bad"], "JSON"),
        (["--model", str(d / "tone.npz"), str(d / "long.wav"), "--threshold", '{"bed": 1}'], "per keyword"),
        (["--model", str(d / "tone.npz")], "give a WAV"),
        (["--model", str(d / "tone.npz"), "--eval", "--json", str(tmp_path / "x.json")], "--data-root"),
        (["--model", str(d / "tone.npz"), str(d / "long.wav"), "--noise", str(d)], "--eval"),
    ]
    for args, match in cases:
        assert main(["detect", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("ERROR ") and match in err, (args, err)
    assert LABELS[-1] == "_unknown_"


def test_a_model_with_the_utterance_maximum_streams_read_ahead(files, tmp_path, capsys):
    """The tone model normalised by the utterance's maximum streams with STREAM_DECAY / STREAM_AHEAD and still
    reports each word at its own time (not STREAM_AHEAD frames late)."""
    from edgetp.stream.features import STREAM_AHEAD, STREAM_DECAY

    d, events = files
    m = tone_model()
    m.frontend.pop("running_max_decay")
    save_model(m, tmp_path / "utt.npz")
    assert (
        main(["detect", "--model", str(tmp_path / "utt.npz"), str(d / "long.wav"), "--json", str(tmp_path / "u.json")])
        == 0
    )
    out = json.loads((tmp_path / "u.json").read_text())
    fe = out["frontend"]
    assert (fe["decay"], fe["ahead"], fe["latency_frames"]) == (STREAM_DECAY, STREAM_AHEAD, STREAM_AHEAD + 4)
    assert fe["latency_s"] == (STREAM_AHEAD + 4) / 100 and "utterance's maximum" in fe["why"]
    assert f"read {STREAM_AHEAD} frames ahead" in capsys.readouterr().out
    want = [(w, a / SR, b / SR) for w, a, b in events if w != OTHER]
    got = [(r["word"], r["time_s"]) for r in out["detections"]]
    assert [w for w, _ in got] == [w for w, _, _ in want]
    assert all(a <= t <= b + 0.5 for (_, t), (_, a, b) in zip(got, want))


def test_a_shipped_model_streams(cli, files, tmp_path):
    d, _ = files
    r = cli("detect", "--model", "kws-mcu", d / "long.wav", "--json", tmp_path / "k.json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    fe = json.loads((tmp_path / "k.json").read_text())["frontend"]
    assert (fe["decay"], fe["ahead"]) == (2, 50)


@pytest.mark.parametrize("fixed", [False, True])
def test_eval_after_personalisation(files, tmp_path, capsys, fixed):
    """--shots: fine-tune on the speaker's support clips, stream only its query clips, figures before and after."""
    d, _ = files
    root = tmp_path / "corpus"
    for w in WORDS:
        (root / w).mkdir(parents=True)
        for n in range(3):  # train-split clips of one speaker: 1 shot of support per word, the protocol's query
            write_wav16(root / w / f"cccc0003_nohash_{n}.wav", np.pad(tone(w, amp=0.1 + 0.05 * n), (4000, 4000)))
    (root / "testing_list.txt").write_text("")
    (root / "validation_list.txt").write_text("")
    out = tmp_path / "p.json"
    args = [
        "detect",
        "--eval",
        "--model",
        str(d / "tone.npz"),
        "--data-root",
        str(root),
        "--minutes",
        "0.5",
        "--speaker",
        "cccc0003",
        "--allow-seen-speaker",
        "--shots",
        "1",
        "--json",
        str(out),
    ]
    assert main(args + (["--fixed"] if fixed else [])) == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    assert r["shots"] == 1 and r["fixed"] is fixed and set(r) >= {"before", "after", "recipe"}
    assert r["support_clips"] and not set(r["support_clips"]) & set(r["stream_clips"])
    assert all("/cccc0003_" in c for c in r["stream_clips"]) and len(r["support_clips"]) == len(WORDS)
    for k in ("before", "after"):
        assert r[k]["overall"]["occurrences"] > 3 and r[k]["det"]
    # the adapted weights are heard: their increments differ from the pretrained ones
    assert r["before"]["det"] != r["after"]["det"] or r["before"]["overall"] != r["after"]["overall"]
    capsys.readouterr()
    assert main(args[:-4] + ["--speaker", "cccc0003", "aaaa0001", "--shots", "1", "--json", str(out)]) == 2
    assert "exactly one --speaker" in capsys.readouterr().err
