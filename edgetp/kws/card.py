"""Model cards: `models/<name>/README.md` from the model file and measured figures."""
from __future__ import annotations

import json
from pathlib import Path

from edgetp.model import Model


def _row(label: str, r: dict) -> str:
    f = lambda k: f"{r[k]:.1f} ± {r.get(k + '_std', 0):.1f}" if k in r else "n/a"
    return (f"| {label} | {r['shots']} | {f('query_acc_before')} | {f('query_acc_after')} | "
            f"{f('test_acc_before')} | {f('test_acc_after')} | {f('finetune_only_acc')} |")


def write_card(name: str, model: Model, results: list[tuple[str, dict]], path: Path, purpose: str,
               rebuild: list[str], notes: list[str], memory: str = "") -> None:
    rec, met, cfg = model.recipe, model.metrics, model.cfg
    lines = [
        f"# {name}", "", purpose, "",
        "| | |", "|---|---|",
        f"| network | {cfg.net_string()} ({'recurrent' if cfg.recurrent else 'feed-forward'} LIF, {cfg.reset} reset, "
        f"V_th {cfg.vth}, α {cfg.leak_m}, λ {cfg.leak_t}, γ {cfg.gamma}) |",
        f"| trainable parameters | {model.n_params()} (+ frozen target propagator {model.params.S.size + (model.params.S_rec.size if model.params.S_rec is not None else 0)}) |",
        f"| labels | {len(model.labels)}: the paper's 35 words + `_unknown_` |",
        f"| data | offline espeak-ng corpus (`edgetp data prepare-default`), pretrain split without held-out speaker `{rec.get('held_out_speaker')}` ({met.get('pretrain_utterances')} utterances) |",
        f"| pretraining recipe | {rec.get('epochs')} epochs, {rec.get('optimizer')} lr {rec.get('lr')} cosine → 0.25·lr, batch {rec.get('batch')}, targets {rec.get('targets')}, augmentation shift ±{rec.get('shift', 0)} frames, noise {rec.get('noise', 0)} |",
        f"| accuracy after pretraining | train {met.get('train_acc', float('nan')):.1f} %, validation (other speakers) {met.get('validation_acc') or float('nan'):.1f} % |",
        f"| default fine-tuning | {json.dumps(rec.get('finetune', {}))} |",
        f"| model hash | `{model.hash()}` |",
    ]
    if memory:
        lines += ["", "## On a device", "", memory]
    lines += ["", "## Speaker adaptation (the paper's protocol)", "",
              "Query = the held-out speaker's 20 %; test = other speakers' testing split (does personalisation hurt "
              "them?); from scratch = the same architecture trained on the support set alone. Accuracies in %, "
              "mean ± std over seeds (the support set is resampled per seed).", "",
              "| setting | shots | query before | query after | others before | others after | from scratch |",
              "|---|---|---|---|---|---|---|"]
    lines += [_row(label, r) for label, r in results]
    lines += ["", "## Rebuild", "", "```bash", *rebuild, "```", ""]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    path.write_text("\n".join(lines))


PURPOSE = {
    "kws-mcu": "The on-device default: the network `edgetp finetune --kws` uses unless told otherwise, sized so "
               "that integer TP fine-tuning (int16 weights, class-prototype targets, batch 1) fits in 64 KB of "
               "RAM on a Cortex-M4 (docs/fixed-point.md, section 7).",
    "kws-paper": "The paper's network: 120 → 450 recurrent LIF → 36, hard reset (the published speech run's "
                 "reset in effect, spec section 6), pretrained with the class target set that fine-tuning uses. "
                 "Too large for a microcontroller's RAM; the float reference. Its recorded fine-tuning defaults "
                 "(class targets, batch 8, Adam 2e-4, 6 epochs, rehearsal 4) are the setting that meets the "
                 "issue's target.",
}
def label(r: dict) -> str:
    """A result row's setting, from the recipe its JSON recorded."""
    rec = r["recipe"]
    who = "readout only" if rec["train"] == "readout" else "TP, all layers"
    if r.get("fixed"):
        who = f"integer {who} (`--fixed`, int16, {r.get('int_optimizer', 'colnorm')})"
    parts = [who, "class targets" if rec["targets"] == "classes" else "batch rule", f"batch {rec['batch']}",
             f"{'' if r.get('fixed') else rec['optimizer'] + ' '}lr {rec['lr']:g}", f"{rec['epochs']} ep."]
    if rec.get("rehearsal"):
        parts.append(f"rehearsal {rec['rehearsal']:g}")
    return ", ".join(parts)


def main(dirs: list[str]) -> None:
    from edgetp.model import load_model

    order = {"1": 0, "5": 1, "all": 2}
    for d in map(Path, dirs):
        model = load_model(d / "model.npz")
        rows = []
        for f in sorted((d / "results").glob("*.json"), key=lambda p: (p.stem.rsplit("-", 1)[0],
                                                                        order.get(p.stem.rsplit("-", 1)[1], 9))):
            rows.append((label(r := json.loads(f.read_text())), r))
        rebuild = ["./setup.sh   # makes the offline corpus",
                   model.recipe.get("command", "") + f" --out {d}/model.npz",
                   f"models/rebuild.sh eval-{'mcu' if 'mcu' in d.name else 'paper'}   # the table above"]
        write_card(d.name, model, rows, d / "README.md", PURPOSE.get(d.name, ""), rebuild, NOTES.get(d.name, []),
                   MEMORY.get(d.name, ""))
        print(f"wrote {d / 'README.md'} ({len(rows)} result rows)")


NOTES: dict = {
    "kws-mcu": [
        "Plainly, TP on every layer against readout-only fine-tuning on this 64-neuron model: with the "
        "device's update (`colnorm`, float or integer) TP learns the new voice better at 1 and 5 shots "
        "(5 shots: 71.4 % against 68.1 %) but forgets more (others 35 % against 49 %); at equal forgetting "
        "(colnorm 3e-5, 6 epochs: others 48.0 %) it reaches 59.1 % where readout-only reaches 68.1 %, and with "
        "all shots readout-only wins outright (82.9 % against 76.2 %). So on this model readout-only is the "
        "better choice whenever the other speakers matter; TP's hidden-layer learning pays off on the larger "
        "kws-paper.",
        "The update rule matters more than the layers: at batch 1 the authors' Adam reaches 54.3 %, colnorm "
        "(per-input RMS normalisation, what the device runs) 71.4 % at the same forgetting (35 %). The integer "
        "rule follows its float twin: 39.5 / 69.0 / 76.7 % against 39.0 / 71.4 / 76.2 % (1 / 5 / all shots; "
        "6-seed means differ by 0.24 pp, docs/fixed-point.md section 6.3).",
        "Batch 8 with rehearsal (3 other-speaker utterances per support utterance) halves the forgetting of "
        "all-layer TP (others 51.6 % instead of 35 %) at a higher query accuracy (73.8 %). Rehearsal at batch 1 "
        "does not help: others fell to 36 % even with half the fine-tuning samples from other speakers "
        "(measured, 2 seeds), because one optimizer step per frame of one utterance is the damage, whatever "
        "the utterance.",
        "The batch rule at batch 8 forgets least (others 53-63 %) but learns least (27 / 39 / 56 %).",
        "The 64-neuron network is the limit: it fits only 66 % of its own training set. A variant pretrained "
        "with class targets (same size, not shipped) validated at 56.2 % instead of 54.3 % and fine-tuned to "
        "62.1 % (Adam, 5 shots, 2 seeds) instead of 54.3 %; per-utterance normalisation lowered validation "
        "to 49.5 %.",
        "The issue's target (>= 95 % query after 5 shots with <= 10 pp forgetting) is not reached by this "
        "model (see kws-paper for the closest result).",
    ],
    "kws-paper": [
        "**Target met**: with its recorded defaults (`edgetp finetune --kws --model kws-paper`: TP on all "
        "layers, class targets, batch 8, Adam 2e-4, 6 epochs, 4 other-speaker rehearsal utterances per support "
        "utterance) 5 shots lift the held-out voice from 36.2 % to 96.2 ± 0.7 % (3 seeds: 97.1, 95.7, 95.7) "
        "while the other speakers go from 84.8 % to 77.5 % (7.3 pp; the target is >= 95 % with <= 10 pp).",
        "TP against readout-only, plainly: at the same setting readout-only reaches 88.6 % and forgets only "
        "2.0 pp; TP on every layer buys +7.6 pp on the new voice for 5.3 pp more forgetting, and only TP "
        "reaches 95 %. With 1 shot TP reaches 80.0 % (-11.1 pp) against 71.9 % (-2.3 pp); with all shots "
        "96.4 % (-4.3 pp) against 92.9 % (-1.0 pp). The paper's batch rule at the same setting (5 shots) meets the target too: 95.2 % at "
        "-8.1 pp. At batch 1 without rehearsal (the device's regime) TP reaches 93.6 % but the others "
        "fall by 20.1 pp; readout-only 90.0 % at 10.2 pp.",
        "What it took (exploration with 1-3 seeds, `edgetp finetune` settings on this corpus): class-target "
        "pretraining (the batch-rule-pretrained network, validation 75.0 % instead of 68.6 %, adapted worse: "
        "93.3 ± 1.8 % at 7.9 pp with batch 8, Adam 3e-4, rehearsal 3); batch 8 (at batch 1 every variant forgot "
        "20 pp or more); rehearsal (on the batch-rule network, 1 seed: batch 8 without it 94.3 % but 39.6 pp "
        "forgetting; rehearsal 2 for 10 epochs 95.7 % at 17.9 pp; rehearsal 5 for 10 epochs 88.6 % at 7.2 pp); "
        "Adam 2e-4 rather than 3e-4 (on this network, rehearsal 4 at 3e-4: 95.2 % at 10.5 pp, 3 seeds). Fine-tuning augmentation (shift 8, noise 0.1) cost "
        "3-4 pp of query accuracy; colnorm instead of Adam changed nothing measurable here (92.4 % at 7.7 pp "
        "on the previous network).",
        "Rehearsal is a host-side recipe: a device would have to store the other speakers' utterances "
        "(features in flash) and run several sequences per step.",
    ],
}
MEMORY: dict = {
    "kws-mcu": "Integer TP (int16 weights, class targets, batch 1, colnorm), from `edgetp export --model kws-mcu --c DIR`: "
               "RAM 59,112 B (trainable weights 28,160, data state 596, target set 18,720, optimizer 3,328, "
               "scratch 8,308), flash 42,882 B (frozen propagator 12,800, initial weights 28,160, tables 1,922). "
               "Whole firmware image on QEMU mps2-an386 (`edgetp hil --target qemu`): RAM 62,312 B with a 2 KB "
               "stack, flash 58,880 B; one training step (10 ms frame) 2.74 M instructions (target 800 k: missed, "
               "the optimizer is ~73 %), one inference step 34.2 k instructions (docs/deploy.md).",
    "kws-paper": "Float only: 272,700 trainable parameters (1.1 MB as float32) do not fit a microcontroller's RAM.",
}

if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
