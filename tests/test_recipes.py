"""Recipes as data (issue 31): each setting is declared once in a dataclass (edgetp.settings); `finetune` and `hil`
keep few flags and read the rest from a recipe file (--recipe, JSON or TOML) or --set KEY=VALUE; a moved flag says
where it went; every command models/rebuild.sh runs and every card's Rebuild section quotes parses with the real
parser (and its recipe files load)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, fields as dc_fields

import pytest

from conftest import ROOT
from edgetp.errors import EdgetpError
from edgetp.settings import read, setting

FLAG_LIMITS = {"finetune": 12, "hil": 20}


def subparsers():
    from edgetp.cli import build_parser

    p = build_parser()
    return next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices


def n_flags(parser) -> int:
    return sum(1 for a in parser._actions if not isinstance(a, argparse._HelpAction))


def test_finetune_and_hil_keep_few_flags():
    sub = subparsers()
    counts = {c: n_flags(sub[c]) for c in FLAG_LIMITS}
    assert all(counts[c] <= FLAG_LIMITS[c] for c in FLAG_LIMITS), counts
    # the count sees every option: one more on finetune goes over its limit
    sub["finetune"].add_argument("--one-more")
    assert n_flags(sub["finetune"]) == counts["finetune"] + 1 > FLAG_LIMITS["finetune"]


def test_the_cli_files_hand_copy_no_choices():
    """argparse choices come from the declarations, not from tuples written into edgetp/cli/*.py."""
    for f in sorted((ROOT / "edgetp" / "cli").glob("*.py")):
        text = f.read_text()
        for m in re.finditer(r"choices=\(([^)]*)\)", text):
            assert not re.search(
                r"\"(adam|sgd|colnorm|rownorm|all|readout|batch|classes|float|fixed|hard|soft)\"", m.group(1)
            ), f"{f.name}: a hand-copied choice list {m.group(0)}"


# ----------------------------------------------------------------------------- the declarations and their checks
@dataclass
class _Toy:
    n: int = setting(3, "a count", lo=1)
    rate: float = setting(0.5, "a rate", lo=0, hi=1, hi_open=True)
    kind: str = setting("a", "a kind", choices=("a", "b"))
    on: bool = setting(False, "a switch")
    limit: int | None = setting(None, "an optional count", lo=0)


@pytest.mark.parametrize(
    "data, expect",
    [
        ({"nn": 1}, "unknown setting 'nn'"),
        ({"n": "3"}, "n must be a int, got '3'"),
        ({"n": True}, "n must be a int"),
        ({"n": 0}, "n must be >= 1, got 0"),
        ({"rate": 1.0}, "rate must be < 1"),
        ({"rate": "x"}, "rate must be a float"),
        ({"kind": "c"}, "kind must be one of a, b"),
        ({"on": 1}, "on must be a bool"),
        ({"limit": -1}, "limit must be >= 0"),
    ],
)
def test_a_bad_recipe_file_names_the_key(tmp_path, data, expect):
    f = tmp_path / "r.json"
    f.write_text(json.dumps(data))
    with pytest.raises(EdgetpError, match=re.escape(expect)) as e:
        read((_Toy,), f)
    assert str(f) in str(e.value)


def test_recipe_files_round_trip_in_json_and_toml(tmp_path):
    good = {"n": 5, "rate": 0.25, "kind": "b", "on": True, "limit": 7}
    j = tmp_path / "r.json"
    j.write_text(json.dumps(good))
    assert read((_Toy,), j) == good
    t = tmp_path / "r.toml"
    t.write_text('n = 5\nrate = 0.25\nkind = "b"\non = true\nlimit = 7\n')
    if sys.version_info >= (3, 11):
        assert read((_Toy,), t) == good
        assert _Toy(**read((_Toy,), t)) == _Toy(**good)
    else:
        with pytest.raises(EdgetpError, match="TOML recipe files need Python >= 3.11"):
            read((_Toy,), t)
    # --set items are typed as declared and win over the file; an int is a float's value
    assert read((_Toy,), j, ["n=9", "rate=0", "limit=none", "on=false"]) == dict(
        good, n=9, rate=0.0, limit=None, on=False
    )
    for bad, expect in (("n=x", "n must be a int"), ("n", "expected KEY=VALUE"), ("on=yes", "true or false")):
        with pytest.raises(EdgetpError, match=expect):
            read((_Toy,), None, [bad])


@pytest.mark.parametrize(
    "text, suffix, expect",
    [
        ("{", ".json", "not a JSON recipe"),
        ("[1]", ".json", "one table"),
        ("n = ", ".toml", "not a TOML recipe"),
        ("n: 1", ".yaml", ".json or .toml"),
    ],
)
def test_a_broken_recipe_file_is_one_clear_error(tmp_path, text, suffix, expect):
    if suffix == ".toml" and sys.version_info < (3, 11):
        pytest.skip("TOML needs Python >= 3.11")
    f = tmp_path / f"r{suffix}"
    f.write_text(text)
    with pytest.raises(EdgetpError, match=re.escape(expect)):
        read((_Toy,), f)
    with pytest.raises(EdgetpError, match="cannot read"):
        read((_Toy,), tmp_path / "missing.json")


def test_each_shipped_recipe_file_is_quoted_where_a_command_uses_it():
    """models/recipes/* are read by the commands of rebuild.sh or the docs, which the tests below parse."""
    quoted = (ROOT / "models" / "rebuild.sh").read_text() + "".join(
        f.read_text() for f in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    )
    files = sorted((ROOT / "models" / "recipes").iterdir())
    assert files and all(f"models/recipes/{f.name}" in quoted for f in files), files


# ----------------------------------------------------------------------------- each CLI path reads the recipe
def _finetune_args(*argv):
    return subparsers()["finetune"].parse_args(["--kws", *map(str, argv)])


def test_finetune_float_and_fixed_read_the_recipe_file(tmp_path):
    from edgetp.cli.finetune import recipe_from
    from edgetp.model import load_model

    model = load_model("kws-mcu")
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"epochs": 5, "lr": 3e-4, "batch": 2, "update_every": 3}))
    r = recipe_from(_finetune_args("--recipe", f), model)  # the float rule
    assert (r.epochs, r.lr, r.batch, r.update_every) == (5, 3e-4, 2, 3)
    assert r.train == model.recipe["finetune"]["train"]  # the rest: the model's record
    with pytest.raises(EdgetpError, match="batch 2 with --fixed"):  # --fixed reads the same file
        recipe_from(_finetune_args("--recipe", f, "--fixed"), model)
    f.write_text(json.dumps({"epochs": 5, "lr": 3e-4}))
    r = recipe_from(_finetune_args("--recipe", f, "--fixed", "--set", "epochs=2"), model)
    assert (r.epochs, r.lr, r.batch, r.optimizer) == (2, 3e-4, 1, "colnorm")  # --set wins over the file


def test_finetune_run_settings_come_from_the_recipe(tmp_path):
    from edgetp.cli.finetune import apply_run_settings
    from edgetp.kws.run_settings import FinetuneRun

    f = tmp_path / "r.toml"
    f.write_text('test_limit = 10\nbaseline = false\nothers = "validation"\n')
    a = _finetune_args("--recipe", f)
    apply_run_settings(a)
    assert (a.test_limit, a.baseline, a.others, a.frontend) == (10, False, "validation", FinetuneRun.frontend)


def test_hil_reads_the_recipe_file(tmp_path):
    from edgetp.cli.hil import apply_settings
    from edgetp.model import load_model
    from firmware_gen.options import device_from_args

    f = tmp_path / "r.json"
    f.write_text(
        json.dumps({"lr": 5e-4, "beta_shift": 8, "update_every": 4, "epochs": 2, "query_limit": 3, "stack": 4096})
    )
    a = subparsers()["hil"].parse_args(["--target", "host", "--recipe", str(f), "--set", "clip=2"])
    apply_settings(a)
    assert (a.epochs, a.query_limit, a.stack, a.support_limit, a.recover) == (2, 3, 4096, 0, True)
    _qm, dev, _notes = device_from_args(load_model("kws-mcu"), a)
    assert (dev.lr, dev.beta_shift, dev.update_every, dev.clip, dev.train) == (5e-4, 8, 4, 2, "readout")


def test_a_recipe_naming_a_removed_optimizer_is_told_why(tmp_path):
    """optimizer factored (removed) in a hil recipe file or a --set item: one EdgetpError saying it was removed."""
    from edgetp.settings import read
    from deploy.hil_settings import HilSettings
    from firmware_gen.defaults import DeviceSettings

    f = tmp_path / "r.json"
    f.write_text(json.dumps({"optimizer": "factored"}))
    for args in ((f, ()), (None, ["optimizer=factored"])):
        with pytest.raises(EdgetpError, match="optimizer 'factored': the factored rule .* was removed"):
            read((DeviceSettings, HilSettings), *args)
    assert read((DeviceSettings, HilSettings), None, ["optimizer=rownorm"]) == {"optimizer": "rownorm"}


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["finetune", "--kws", "--lr", "1e-3"], '--lr moved to the recipe file: --recipe F with {"lr": ...}'),
        (["finetune", "--kws", "--no-baseline"], '--no-baseline moved to the recipe file: --recipe F with {"baseline"'),
        (["finetune", "--kws", "--workers=2"], "--set workers=VALUE"),
        (["hil", "--target", "host", "--epochs", "1"], "--epochs moved to the recipe file"),
        (["hil", "--target", "host", "--no-recover"], '{"recover": ...}'),
        (["hil", "--target", "host", "--wbits", "8"], '{"wbits": ...}'),
        (["pretrain", "--kws", "--out", "x.npz", "--fixed", "hbits=8"], "--fixed is now --device"),
    ],
)
def test_a_moved_flag_says_where_it_went(capsys, argv, expect):
    from edgetp.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR ") and expect in err and len(err.strip().splitlines()) == 1, err


def test_an_unknown_flag_is_still_argparses_error(capsys):
    from edgetp.cli import main

    with pytest.raises(SystemExit) as e:
        main(["finetune", "--kws", "--colour", "red"])
    assert e.value.code == 2 and "unrecognized arguments: --colour red" in capsys.readouterr().err


def test_a_bad_recipe_file_stops_finetune_in_one_line(cli, tmp_path):
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"lr": "fast"}))
    r = cli("finetune", "--kws", "--fixed", "--recipe", f, env={"EDGETP_HOME": str(tmp_path)})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"{f}: lr must be a float, got 'fast'" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- quoted commands parse
def check_command(argv: list[str]) -> None:
    """An `edgetp ...` command line parses with the real parser, names no moved flag, and its recipe settings
    (--recipe, relative to the repository; --set; pretrain's --ft / --device) are valid."""
    from edgetp.cli import build_parser, moved_flag

    args, rest = build_parser().parse_known_args(argv)
    assert not rest, f"{shlex.join(argv)}: {moved_flag(rest, getattr(args, 'moved', None) or {}) or rest}"
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        if args.command == "finetune":
            from edgetp.cli.finetune import settings_given

            settings_given(args)
        elif args.command == "hil":
            from edgetp.cli.hil import apply_settings

            apply_settings(args)
        elif args.command == "pretrain":
            from edgetp.cli.pretrain import finetune_defaults, fixed_extras

            finetune_defaults(args.ft)
            fixed_extras(args.device)
    finally:
        os.chdir(cwd)


def parse_error(argv):
    try:
        check_command(argv)
    except (AssertionError, EdgetpError, SystemExit) as e:
        return str(e) or "argparse error"
    return None


def test_the_command_check_catches_old_flags_and_bad_recipes():
    assert parse_error(["finetune", "--kws", "--recipe", "models/recipes/device-rule.json", "--fixed"]) is None
    assert "--epochs moved" in parse_error(["finetune", "--kws", "--epochs", "0"])
    assert "unknown setting" in parse_error(["finetune", "--kws", "--set", "epoch=0"])
    assert "cannot read" in parse_error(["hil", "--target", "qemu", "--recipe", "models/recipes/none.json"])
    assert "--fixed is now --device" in parse_error(["pretrain", "--kws", "--out", "m.npz", "--fixed", "hbits=8"])


def rebuild_commands(tmp_path) -> list[list[str]]:
    """Every `edgetp` command models/rebuild.sh runs (all of its steps), recorded by a stand-in `edgetp` on PATH in a
    copy of the script: nothing is trained, measured or written into the repository."""
    work = tmp_path / "repo"
    (work / "models").mkdir(parents=True)
    shutil.copy(ROOT / "models" / "rebuild.sh", work / "models" / "rebuild.sh")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "calls.jsonl"
    fake = bin_ / "edgetp"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    (bin_ / "python3").write_text("#!/bin/sh\nexit 0\n")  # the card re-rendering at its end
    for f in (fake, bin_ / "python3"):
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    real_dev = tmp_path / "real-dev"
    real_dev.mkdir()
    env = dict(
        os.environ,
        PATH=f"{bin_}:{os.environ['PATH']}",
        EDGETP_REAL_DEV=str(real_dev),
        EDGETP_HOME=str(tmp_path / "home"),
    )
    r = subprocess.run(
        ["bash", "models/rebuild.sh", "pretrain", "dev", "test", "real", "real-dev", "device-mcu"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_every_command_of_rebuild_sh_parses(tmp_path):
    calls = rebuild_commands(tmp_path)
    kinds = {c[0] for c in calls}
    assert {"pretrain", "finetune", "hil", "data", "real-dev", "predict"} <= kinds, kinds
    bad = [(c, e) for c in calls if (e := parse_error(c))]
    assert not bad, bad


def card_commands() -> list[tuple[str, list[str]]]:
    """The `edgetp ...` lines of each model card's Rebuild section."""
    out = []
    for card in sorted((ROOT / "models").glob("*/README.md")):
        text = card.read_text()
        section = text.split("## Rebuild", 1)[1].split("\n## ", 1)[0]
        for line in section.splitlines():
            for cmd in re.split(r";|&&", line.split("   #", 1)[0]):
                cmd = cmd.strip()
                if cmd.startswith("edgetp "):
                    out.append((card.parent.name, shlex.split(cmd)[1:]))
    return out


def test_every_card_rebuild_command_parses():
    cmds = card_commands()
    assert {name for name, _ in cmds} >= {"kws-mcu", "kws-paper", "kws-mcu-64k"}
    assert any(c[0] == "pretrain" for _, c in cmds)
    bad = [(name, c, e) for name, c in cmds if (e := parse_error(c))]
    assert not bad, bad


def doc_commands() -> list[tuple[str, list[str]]]:
    """`edgetp finetune|hil|pretrain ...` lines of the code blocks in README.md and docs/*.md (continuations joined;
    lines with placeholders such as … or [OPTION] are prose, not commands)."""
    out = []
    for f in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks = re.findall(r"```[a-z]*\n(.*?)```", f.read_text(), re.S)
        for block in blocks:
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split("  #", 1)[0].strip()
                m = re.match(r"(?:\$ )?edgetp (finetune|hil|pretrain)\b(.*)", line)
                if not m or re.search(r"[…\[\]<>|$]", line):
                    continue
                out.append((f.name, shlex.split(line)[1:]))
    return out


def test_the_docs_commands_parse():
    cmds = doc_commands()
    assert cmds
    bad = [(name, c, e) for name, c in cmds if (e := parse_error(c))]
    assert not bad, bad


def test_each_recipe_field_has_help():
    from deploy.hil_settings import HilSettings
    from edgetp.kws.run_settings import FinetuneRun
    from edgetp.kws.train import Recipe
    from firmware_gen.defaults import DeviceSettings

    for cls in (Recipe, FinetuneRun, DeviceSettings, HilSettings):
        assert all(f.metadata.get("help") for f in dc_fields(cls)), cls.__name__
