"""Network description and parameters of a TP spiking network.

Shapes follow the spec (`W_l` is ``(H_l, H_{l-1})``): ``W[0..L-1]`` are the hidden
layers' input weights, ``W[L]`` the readout, ``R[l]`` the recurrent weights of hidden
layer ``l`` (0-based), ``S``/``S_rec`` the frozen target propagator.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

import numpy as np

from edgetp.errors import EdgetpError

RESETS = ("soft", "hard")
TARGETS = ("batch", "classes")  # target sets (spec 5): each sample's label, or every class once
TRAIN_MODES = ("all", "readout")  # which layers learn: every one, or the readout alone
# Fine-tuning's defaults, declared once for every layer (the float and integer rules, the device settings, the recipes):
DEFAULT_LR = 1e-4  # the learning rate when neither a recipe nor an option gives one
DEFAULT_BETA_SHIFT = 10  # the normalised rules' statistics EMA decay 2^-10 (integer rule, device; rownorm's float twin)


def check_update_every(update_every, what: str = "update every") -> int:
    """``update_every`` (learn on the steps t % k == 0 since the reset; the float and integer
    rules and the device) as an int >= 1, else EdgetpError naming ``what`` (e.g. a CLI option)."""
    if isinstance(update_every, bool) or not isinstance(update_every, (int, np.integer)) or update_every < 1:
        raise EdgetpError(f"{what} must be an integer >= 1, got {update_every!r}")
    return int(update_every)


@dataclass(frozen=True)
class NetConfig:
    """Architecture and neuron constants (all discrete-time, per step).

    vth: firing threshold V_th; leak_m: membrane leak alpha; leak_t: trace leak
    lambda; leak_out: readout leak beta; gamma: surrogate scale; reset: soft|hard.
    """

    n_in: int
    hidden: tuple[int, ...]
    n_out: int
    recurrent: bool = True
    vth: float = 0.66
    leak_m: float = 0.77
    leak_t: float = 0.977
    leak_out: float = 1.0
    gamma: float = 10.0
    reset: str = "hard"

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.n_in < 1 or self.n_out < 2 or not self.hidden or min(self.hidden) < 1:
            raise EdgetpError(f"invalid network shape: {self.n_in}-{self.hidden}-{self.n_out}")
        if self.reset not in RESETS:
            raise EdgetpError(f"reset must be one of {RESETS}, got {self.reset!r}")
        if not self.vth > 0:
            raise EdgetpError(f"vth must be > 0, got {self.vth}")

    @property
    def layers(self) -> int:
        return len(self.hidden)

    def sizes(self) -> list[int]:
        return [self.n_in, *self.hidden, self.n_out]

    def net_string(self) -> str:
        r = "r" if self.recurrent else ""
        return "-".join([str(self.n_in), *(f"{h}{r}" for h in self.hidden), str(self.n_out)])

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise EdgetpError(f"unknown network config keys: {sorted(unknown)}")
        try:
            return cls(**d)
        except TypeError as exc:
            raise EdgetpError(f"bad network config: {exc}") from None


_NET_RE = re.compile(r"^\d+(-\d+r?)+-\d+$")


def parse_net(text: str, **neuron) -> NetConfig:
    """Parse ``"120-450r-36"``: inputs, hidden sizes (``r`` = recurrent), classes.

    All hidden layers must agree on recurrence (the spec's network has one flag).
    """
    if not _NET_RE.match(text or ""):
        raise EdgetpError(f"--net must look like 120-450r-36 (inputs-hidden[r]-...-classes), got {text!r}")
    parts = text.split("-")
    hidden = parts[1:-1]
    rec = {h.endswith("r") for h in hidden}
    if len(rec) != 1:
        raise EdgetpError(f"--net {text!r}: mark either every hidden layer recurrent ('r') or none")
    return NetConfig(
        int(parts[0]), tuple(int(h.rstrip("r")) for h in hidden), int(parts[-1]), recurrent=rec.pop(), **neuron
    )


@dataclass
class Params:
    """Weights. ``W``/``R`` train; ``S``/``S_rec`` are frozen (target propagator)."""

    W: list[np.ndarray]
    R: list[np.ndarray] | None
    S: np.ndarray
    S_rec: np.ndarray | None
    extra: dict = field(default_factory=dict)

    def trainable(self) -> list[np.ndarray]:
        """The trainable matrices in ``trainable_names`` order."""
        return [*self.W, *(self.R or [])]

    def named(self) -> dict[str, np.ndarray]:
        """Every matrix by name: W0..WL, R0..R{L-1}, S_rec (recurrent nets), then S."""
        out = {f"W{i}": w for i, w in enumerate(self.W)}
        if self.R is not None:
            out.update({f"R{i}": r for i, r in enumerate(self.R)})
            out["S_rec"] = self.S_rec
        out["S"] = self.S
        return out

    def astype(self, dtype) -> "Params":
        cv = lambda a: None if a is None else np.array(a, dtype=dtype, order="C", copy=True)
        return Params(
            [cv(w) for w in self.W],
            None if self.R is None else [cv(r) for r in self.R],
            cv(self.S),
            cv(self.S_rec),
            dict(self.extra),
        )

    def copy(self) -> "Params":
        return self.astype(self.S.dtype)

    def check(self, cfg: NetConfig) -> None:
        """Raise EdgetpError unless every array has the shape ``cfg`` implies."""
        sizes = cfg.sizes()
        want = [
            ("W%d" % i, self.W[i] if i < len(self.W) else None, (sizes[i + 1], sizes[i])) for i in range(cfg.layers + 1)
        ]
        if len(self.W) != cfg.layers + 1:
            raise EdgetpError(f"expected {cfg.layers + 1} weight matrices W, got {len(self.W)}")
        if cfg.recurrent:
            if self.R is None or len(self.R) != cfg.layers:
                raise EdgetpError(f"recurrent network needs {cfg.layers} recurrent matrices R")
            want += [("R%d" % i, self.R[i], (h, h)) for i, h in enumerate(cfg.hidden)]
            want.append(("S_rec", self.S_rec, (cfg.hidden[0], cfg.hidden[0])))
        want.append(("S", self.S, (cfg.hidden[0], cfg.n_out)))
        for name, arr, shape in want:
            if arr is None:
                raise EdgetpError(f"missing array {name}")
            if tuple(arr.shape) != shape:
                raise EdgetpError(f"{name} has shape {tuple(arr.shape)}, expected {shape}")
            if not np.all(np.isfinite(arr)):
                raise EdgetpError(f"{name} contains NaN or infinity")


def trainable_names(cfg: NetConfig) -> list[str]:
    """W0..WL, then R0..R{L-1} (recurrent nets): the names of ``Params.trainable()`` in order,
    and the order of the integer update and of its PRNG draws."""
    return [f"W{i}" for i in range(cfg.layers + 1)] + ([f"R{i}" for i in range(cfg.layers)] if cfg.recurrent else [])


def _linear_init(rng, n_out, n_in, dtype):
    # PyTorch nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    b = 1.0 / np.sqrt(n_in)
    return rng.uniform(-b, b, size=(n_out, n_in)).astype(dtype)


def init_params(cfg: NetConfig, seed: int = 0, dtype=np.float32) -> Params:
    """Initialise every matrix like a linear layer (the reference's choice)."""
    rng = np.random.default_rng(seed)
    sizes = cfg.sizes()
    W = [_linear_init(rng, sizes[i + 1], sizes[i], dtype) for i in range(cfg.layers + 1)]
    R = [_linear_init(rng, h, h, dtype) for h in cfg.hidden] if cfg.recurrent else None
    S = _linear_init(rng, cfg.hidden[0], cfg.n_out, dtype)
    S_rec = _linear_init(rng, cfg.hidden[0], cfg.hidden[0], dtype) if cfg.recurrent else None
    return Params(W, R, S, S_rec)
