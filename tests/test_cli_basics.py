"""The CLI as a user meets it: help, bench, and one-line errors for mistakes."""


def test_help_lists_commands(cli):
    r = cli("--help")
    assert r.returncode == 0
    for cmd in ("conformance", "bench"):
        assert cmd in r.stdout


def test_bench_train_prints_figures_and_ratio(cli, tmp_path):
    r = cli("bench", "train", "--net", "20-16r-5", "--steps", "10", "--repeats", "2", "--json", tmp_path / "b.json")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[1] == "samples/s" and float(lines[0].split()[0]) > 0
    assert "NumPy baseline" in lines[1] and lines[2].endswith("edgetp / NumPy")
    import json

    d = json.loads((tmp_path / "b.json").read_text())
    assert d["targets"] == "classes" and d["ratio"] > 0


def test_bench_bad_net_is_one_line(cli):
    r = cli("bench", "train", "--net", "12-abc-3")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "--net" in r.stderr


def test_unknown_command_and_missing_args(cli):
    r = cli("frobnicate")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = cli("conformance")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_a_bad_file_is_one_line_naming_it_in_every_command(tmp_path, capsys):
    """A file the command cannot read ends in one line ``ERROR <file>: <why>``, exit 2, whichever
    command reads it (the form `predict` and `conformance` print per file)."""
    import pytest

    from edgetp.cli import main

    junk = {ext: tmp_path / f"junk.{ext}" for ext in ("npz", "wav", "onnx")}
    for p in junk.values():
        p.write_bytes(b"\x00 not this format")
    missing, empty = tmp_path / "missing.npz", tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["export", "--model", junk["npz"], "--onnx", tmp_path / "x.onnx"], junk["npz"]),
        (["export", "--model", missing, "--onnx", tmp_path / "x.onnx"], missing),
        (["predict", "--model", junk["npz"], junk["wav"]], junk["npz"]),
        (["conformance", junk["npz"]], junk["npz"]),
        (["import-model", junk["onnx"], "--out", tmp_path / "x.npz"], junk["onnx"]),
        (["data", "features", junk["wav"], "--out", tmp_path / "f.npz"], junk["wav"]),
        (["verify-c", "--frontend", junk["wav"]], junk["wav"]),
        (["verify-c", "--frontend", tmp_path / "missing.wav"], tmp_path / "missing.wav"),
        (["verify-c", "--frontend", empty], empty),
    ]
    for argv, path in cases:
        code = main([str(a) for a in argv])
        r = capsys.readouterr()
        lines = (r.out + r.err).strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"ERROR {path}: "), (argv, code, lines)
    # a mistake in the command line itself stays argparse's: usage, then its error line, exit 2
    with pytest.raises(SystemExit) as e:
        main(["data", "features", "--out", str(tmp_path / "f.npz")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("usage: edgetp data features")
    assert "edgetp data features: error: the following arguments are required: IN.wav" in err


def test_command_doc_is_help_then_description():
    # _options.command: a command's doc reads as a docstring; its first paragraph is the commands' list line,
    # the rest the description of its --help (both refilled by argparse, so the wrapping in the source is free).
    import argparse

    from edgetp.cli._options import command

    parent = argparse.ArgumentParser(prog="edgetp")
    p = command(
        parent.add_subparsers(),
        "x",
        """one line
        of help

        The description,
        refilled.
        """,
    )
    listing, own = parent.format_help(), p.format_help()
    assert "one line of help" in listing and "description" not in listing
    assert "The description, refilled." in own and "one line" not in own
