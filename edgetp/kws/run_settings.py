"""How a `finetune` run is measured, besides the fine-tuning recipe (edgetp.kws.train.Recipe): the keys of a finetune
recipe file (or ``--set KEY=VALUE``) that are not training settings, each default declared once."""

from __future__ import annotations

from dataclasses import dataclass

from edgetp.audio import FRONTENDS
from edgetp.settings import setting

OTHERS = ("validation", "testing")


@dataclass
class FinetuneRun:
    others: str | None = setting(
        None,
        "which other speakers measure forgetting (others before / after): the "
        "validation-list speakers (default for the development group) or the testing-list "
        "speakers (default otherwise); a voice group never uses the other group's",
        choices=OTHERS,
    )
    allow_seen_speaker: bool = setting(
        False,
        "fine-tune on a speaker the model was pretrained on (refused by "
        "default: not held out); the report then says so",
    )
    test_limit: int = setting(2000, "at most this many other-speaker test utterances (seeded subsample; 0 = all)", lo=0)
    baseline: bool | None = setting(
        None,
        "train the from-scratch baseline (default: on for one speaker, off for a "
        "voice group, to keep the default run short)",
    )
    frontend: str = setting(
        "float",
        "with --fixed: 'fixed' computes every utterance's inputs with the integer audio "
        "frontend and normalisation the device runs on raw audio (edgetp.audio.frontend_q, checked "
        "against its C by verify-c --frontend); float: the float frontend, inputs then quantized",
        choices=FRONTENDS,
    )
    save: str | None = setting(None, "save the fine-tuned model of the first speaker's first seed to this file")
    workers: int | None = setting(
        None,
        "run the speaker x seed cells as Ray tasks on a local Ray with this many CPUs "
        "(the same figures, bit for bit; needs the ray extra)",
        lo=1,
    )
    ray: str | None = setting(None, "run the cells on an existing Ray cluster: auto or ray://HOST:PORT")
