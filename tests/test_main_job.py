"""The README's main job on the default corpus that ./setup.sh prepares (CI runs setup first)."""
import json

import pytest

from edgetp import paths


@pytest.mark.skipif(not (paths.default_data_root() / "synth_info.json").is_file(),
                    reason="default corpus not prepared (run ./setup.sh or edgetp data prepare-default)")
def test_default_finetune_on_shipped_kws_mcu(cli, tmp_path):
    out = tmp_path / "ft.json"
    r = cli("finetune", "--kws", "--seeds", "1", "--epochs", "1", "--no-baseline", "--quiet", "--json", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    from edgetp.data.synth import DEFAULT_SPEAKER
    from edgetp.kws.speakers import test_group
    # the default is the test voice group: 4 speakers the shipped model never heard, 1 seed each here
    assert d["speakers"] == test_group() and DEFAULT_SPEAKER in d["speakers"] and d["model"] == "kws-mcu"
    assert d["shots"] == 5 and len(d["per_seed"]) == 4
    for s in d["per_seed"]:
        assert s["support"] == 175 and s["query"] == 70
    # fine-tuning changes its answers
    assert any(s["query_acc_after"] != s["query_acc_before"] for s in d["per_seed"])


def test_shipped_models_load_and_match_their_cards():
    from edgetp.model import load_model
    from edgetp.kws.speakers import dev_group, test_group
    for name, net in (("kws-mcu", "120-128r-36"), ("kws-mcu-64k", "120-64r-36"), ("kws-paper", "120-450r-36")):
        m = load_model(name)
        assert m.cfg.net_string() == net and m.cfg.reset == "hard" and len(m.labels) == 36
        assert m.norm_scale is not None and m.recipe["held_out_speaker"]
        # the honest protocol: neither voice group was heard in pretraining
        pre = m.recipe["pretrain_speakers"]
        assert pre == sorted(pre) and len(pre) >= 30 and not set(pre) & set(dev_group() + test_group())
        assert m.recipe["test_speakers"] == test_group() and m.recipe["dev_speakers"] == dev_group()
    # the recorded fine-tuning defaults the cards' headline rows use
    assert load_model("kws-mcu").recipe["finetune"]["optimizer"] == "colnorm"
    assert load_model("kws-paper").recipe["finetune"] == {"targets": "classes", "batch": 8, "lr": 2e-4, "epochs": 6,
                                                          "rehearsal": 4.0}
