"""Figures for `edgetp finetune --plot`."""

from __future__ import annotations

import numpy as np

from edgetp.errors import EdgetpError


def plot_finetune(out: dict, labels: list[str], path) -> None:
    """Accuracy per epoch (each seed), before/after bars, and the query confusion matrix."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EdgetpError("--plot needs matplotlib: pip install 'edgetp[plot]'") from None
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.8))
    for r in out["per_seed"]:
        ax[0].plot(
            range(len(r["query_acc_per_epoch"])), r["query_acc_per_epoch"], marker="o", label=f"seed {r['seed']}"
        )
    ax[0].set(xlabel="epoch", ylabel="query accuracy %", title="held-out speaker during fine-tuning")
    ax[0].legend(fontsize=7)
    names = ["query", "others"]
    before = [out["query_acc_before"], out["test_acc_before"]]
    after = [out["query_acc_after"], out["test_acc_after"]]
    x = np.arange(2)
    ax[1].bar(x - 0.2, before, 0.4, yerr=[out["query_acc_before_std"], out["test_acc_before_std"]], label="before")
    ax[1].bar(x + 0.2, after, 0.4, yerr=[out["query_acc_after_std"], out["test_acc_after_std"]], label="after")
    ax[1].set_xticks(x, names)
    ax[1].set(ylabel="accuracy %", ylim=(0, 100), title=f"{out['shots']} shots, {out['seeds']} seeds")
    ax[1].legend()
    cm = np.asarray(out["per_seed"][0]["confusion_after"])
    ax[2].imshow(cm, cmap="Blues")
    ax[2].set(title="query confusion after (seed 0)", xlabel="predicted", ylabel="true")
    ticks = np.arange(len(labels))
    ax[2].set_xticks(ticks, labels, rotation=90, fontsize=5)
    ax[2].set_yticks(ticks, labels, fontsize=5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
