"""No shipped artefact names a machine's folder (issue 27): a model file, a results file or a card that records
an absolute path works on the machine that wrote it and breaks, or silently reads another corpus, everywhere
else. Corpora are recorded by name and by the command that makes them (``recipe["data"]``, ``data_command``)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_cli

TEXT = (".json", ".jsonl", ".md", ".txt", ".csv")
# a path of one machine in prose: /root/…, /home/…, /tmp/…, /work/… (not a URL's path: "//host/x" or "a/b")
ABS_IN_TEXT = re.compile(r"(?<![\w.~$/:])/(?:root|home|tmp|work|Users|mnt|opt|srv|var)/[\w.-]")


def _strings(o):
    if isinstance(o, dict):
        for k, v in o.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(o, list):
        for v in o:
            yield from _strings(v)
    elif isinstance(o, str):
        yield o


def machine_paths(path: Path) -> list[str]:
    """The absolute paths recorded in one artefact: every JSON string that is an absolute path (a model file's
    record, a results file), and in other text, what looks like one."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:  # the raw record, as any reader of the file sees it
            meta = json.loads(z["meta"].tobytes())
        return [s for s in _strings(meta) if s.startswith("/") or re.match(r"[A-Za-z]:\\", s)]
    text = path.read_text(errors="replace")
    if path.suffix in (".json", ".jsonl"):  # a test ledger: one JSON document a line
        docs = (
            [json.loads(line) for line in text.splitlines() if line.strip()]
            if path.suffix == ".jsonl"
            else [json.loads(text)]
        )
        return [s for s in _strings(docs) if s.startswith("/") or re.match(r"[A-Za-z]:\\", s)]
    return ABS_IN_TEXT.findall(text)


def shipped_artefacts() -> list[Path]:
    found = [p for p in (ROOT / "models").rglob("*") if p.is_file() and (p.suffix in TEXT or p.name == "model.npz")]
    found += [p for p in (ROOT / "experiments" / "results").rglob("*") if p.is_file() and p.suffix in TEXT]
    return sorted(found)


def test_the_scan_covers_every_model_and_results_file():
    found = shipped_artefacts()
    assert len([p for p in found if p.name == "model.npz"]) == len(list((ROOT / "models").glob("*/model.npz"))) >= 3
    assert sum(p.suffix == ".json" for p in found) >= 20


@pytest.mark.parametrize("path", shipped_artefacts(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shipped_artefact_names_a_machine_path(path):
    assert not machine_paths(path), f"{path.relative_to(ROOT)} records {machine_paths(path)[:3]}"


def test_the_scan_catches_a_planted_path(tmp_path):
    """Test the tester: a path in a model's record, in a results file and in a card is found."""
    from dataclasses import replace

    from edgetp.model import load_model, save_model

    m = load_model("kws-mcu-64k")
    save_model(replace(m, recipe=dict(m.recipe, data=str(tmp_path / "kws-synth"))), tmp_path / "model.npz")
    assert machine_paths(tmp_path / "model.npz") == [str(tmp_path / "kws-synth")]
    (tmp_path / "r.json").write_text(json.dumps({"per_seed": [{"model": "/home/ada/m.npz"}]}))
    assert machine_paths(tmp_path / "r.json") == ["/home/ada/m.npz"]
    (tmp_path / "l.jsonl").write_text('{"command": "edgetp x"}\n{"command": "/root/m.npz"}\n')
    assert machine_paths(tmp_path / "l.jsonl") == ["/root/m.npz"]
    (tmp_path / "c.md").write_text(
        "made with `edgetp data synth-kws /root/.cache/edgetp/kws-wide`, see https://x.org/home/a"
    )
    assert machine_paths(tmp_path / "c.md") == ["/root/."]
    assert machine_paths(ROOT / "models" / "kws-mcu-64k" / "model.npz") == []


def test_pretrain_records_the_corpus_by_name_and_command(tmp_path):
    """A model made here names its corpus and the command that makes it, and a results file names the model
    file relative to the working folder or by name, never by the folder it sits in on this machine."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "data"))
    from tone_corpus import make_corpus

    from edgetp.model import load_model

    root = tmp_path / "tones"
    make_corpus(root)
    out = tmp_path / "m.npz"
    r = run_cli(
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
        "--out",
        out,
        env={"EDGETP_HOME": str(tmp_path / "home")},
    )
    assert r.returncode == 0, r.stderr
    assert load_model(out).recipe["data"] == "tones" and not machine_paths(out)
    derived = tmp_path / "d.npz"
    r = run_cli(
        "pretrain",
        "--kws",
        "--from",
        out,
        "--ft",
        "lr=2e-4",
        "--out",
        derived,
        env={"EDGETP_HOME": str(tmp_path / "home")},
    )
    assert r.returncode == 0, r.stderr
    assert not machine_paths(derived), machine_paths(derived)


def test_a_relabelled_model_keeps_its_results(tmp_path):
    """Relabelling (a record fixed, the arrays untouched) changes the hash; the file lists the hash it had, and
    the card counts rows measured on that file as this model's while it still flags rows of another model."""
    import shutil

    from edgetp.kws.card import result_rows
    from edgetp.model import load_model, relabel, save_model

    m = load_model("kws-mcu-64k")
    d = tmp_path / "m"
    shutil.copytree(ROOT / "models" / "kws-mcu-64k", d)
    new = relabel(m, "a test", data="elsewhere")
    assert save_model(new, d / "model.npz") != m.hash()
    back = load_model(d / "model.npz")
    assert all((back.arrays()[k] == a).all() for k, a in m.arrays().items())
    assert (
        back.hashes() == {back.hash(), m.hash(), *m.hashes()} and back.recipe["relabelled_from"][-1]["why"] == "a test"
    )
    rows = len(result_rows(d))
    (d / "results" / "zz-other-5.json").write_text(
        json.dumps(dict(json.loads((d / "results" / "test-tp-fixed-b1-5.json").read_text()), model_hash="0" * 64))
    )
    flagged = lambda hashes: sum("measured on another model" in lab for lab, _ in result_rows(d, hashes))
    assert len(result_rows(d)) == rows + 1 and flagged(back.hashes()) == 1
    assert flagged(back.hash()) == rows + 1  # without the trail, the rows of the earlier file would be stale
