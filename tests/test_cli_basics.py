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
