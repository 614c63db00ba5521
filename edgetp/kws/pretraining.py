"""What `edgetp pretrain --kws` trains with: each setting and its default declared once (the CLI's options,
``--from``'s refusal of training options and the recorded command read this declaration: edgetp.settings)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from edgetp.kws.train import PRETRAIN_OPTIMIZERS, Recipe
from edgetp.settings import check_value, setting
from edgetp.tp.config import RESETS, TARGETS


@dataclass
class Pretraining:
    labels: str = setting("paper", "label set (paper: 35 words + unknown)", choices=("paper", "12"))
    net: str = setting("120-128r-36", "inputs-hidden[r]-classes")
    reset: str = setting("hard", "membrane reset after a spike", choices=RESETS)
    hold_out: str | None = setting(
        None, "speaker excluded from pretraining (default: the offline corpus' default speaker when present)"
    )
    protocol: bool = setting(
        False,
        "the honest speaker protocol (docs/data.md): pretrain on the regular train speakers only, holding out "
        "both voice groups (development and test); recorded in the model",
    )
    epochs: int = setting(10, "passes over the pretraining utterances", lo=0)
    lr: float = setting(1e-3, "learning rate of the first epoch (cosine-annealed)", lo=0)
    optimizer: str = setting("adam", "pretraining's update rule", choices=PRETRAIN_OPTIMIZERS)
    batch: int = setting(32, "utterances per update", lo=1)
    targets: str = setting("batch", "target set", choices=TARGETS)
    per_utterance_norm: bool = setting(
        False, "apply the paper's per-utterance std normalisation before the fixed constants"
    )
    log_gain: float = setting(
        1.0,
        "features log1p(G * S / max S) instead of the paper's log1p(S / max S) (1: the paper; 1000 compresses "
        "about 30 dB, recorded in the model's frontend)",
    )
    running_max: int | None = setting(
        None,
        "normalise by a causal running maximum of S that falls by D/256 of an octave (2.35 D dB/s) per frame "
        "instead of the utterance's max S (streamable; recorded in the model's frontend)",
    )
    channel_norm: float = setting(
        0.0,
        "per-channel normalisation: remove A (0..1) of each mel band's mean log power over the utterance's active "
        "frames (a microphone's colouring; recorded in the model's frontend)",
        lo=0,
        hi=1,
    )
    warp: float = setting(0.0, "augmentation: mel-axis (vocal-tract-length) warp by a random factor in 1 +- W")
    shift: int = setting(0, "augmentation: random time shift up to +-N frames")
    time_mask: int = setting(0, "augmentation: zero a random run of up to N frames (SpecAugment's time mask)", lo=0)
    freq_mask: int = setting(
        0, "augmentation: zero a random run of up to N mel bands (SpecAugment's frequency mask)", lo=0
    )
    noise: float = setting(0.0, "augmentation: feature noise std")
    seed: int = setting(0, "initial weights and training order")

    @classmethod
    def given(cls, args) -> dict:
        """The settings a parsed command line gives (the options left out are None), each checked."""
        out = {}
        for f in fields(cls):
            v = getattr(args, f.name)
            if v is not None:
                out[f.name] = check_value(cls, f.name, v, "--" + f.name.replace("_", "-"))
        return out

    def recipe(self) -> Recipe:
        """The training loop's recipe (edgetp.kws.train.fit): all layers learn, the lr anneals by cosine."""
        return Recipe(
            self.epochs,
            self.lr,
            self.optimizer,
            self.batch,
            self.targets,
            "all",
            "cosine",
            self.seed,
            self.shift,
            self.noise,
            warp=self.warp,
            time_mask=self.time_mask,
            freq_mask=self.freq_mask,
        )

    def command(self) -> str:
        """The options that reproduce this training on `edgetp pretrain --kws`'s command line: the network and
        every training setting (defaults included, so that the record does not depend on later defaults); the
        frontend's and augmentation's only where they change anything; the speaker choices are recorded apart."""
        skip = {"labels", "hold_out", "protocol", "per_utterance_norm"}
        words = [
            f"--{f.name.replace('_', '-')} {getattr(self, f.name)}"
            for f in fields(self)
            if f.name not in skip
            and getattr(self, f.name) is not None
            and not (
                f.name in ("log_gain", "channel_norm", "warp", "time_mask", "freq_mask")
                and getattr(self, f.name) == f.default
            )
        ]
        return " ".join(words) + (" --per-utterance-norm" if self.per_utterance_norm else "")
