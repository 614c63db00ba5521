#!/usr/bin/env bash
# Rebuild the shipped models and their measured model cards (offline corpus made by
# `edgetp data prepare-default`). Pretraining: kws-mcu ~5 min, kws-paper ~8 min on 2
# cores; the evaluation runs below take longer (kws-paper at batch 1 especially); device-mcu
# measures the whole firmware on QEMU (a few minutes). The cards are rendered from what this writes.
#   models/rebuild.sh [pretrain] [eval-mcu] [eval-paper] [device-mcu]
set -euo pipefail
cd "$(dirname "$0")/.."
want() { [ $# -eq 0 ] || [[ " $ARGS " == *" $1 "* ]]; }
ARGS="${*:-pretrain eval-mcu eval-paper device-mcu}"

if want pretrain; then
  edgetp pretrain --kws --net 120-64r-36 --reset hard --epochs 30 --lr 1e-3 --batch 32 --targets batch \
    --shift 8 --noise 0.1 --seed 0 --ft optimizer=colnorm --record-fixed --out models/kws-mcu/model.npz
  edgetp pretrain --kws --net 120-450r-36 --reset hard --epochs 12 --lr 1e-3 --batch 64 --targets classes \
    --shift 8 --noise 0.1 --seed 0 --ft targets=classes --ft batch=8 --ft lr=2e-4 --ft epochs=6 --ft rehearsal=4 \
    --out models/kws-paper/model.npz
fi

ft() {  # model tag shots seeds args...
  local m=$1 tag=$2 shots=$3 seeds=$4; shift 4
  mkdir -p "models/$m/results"
  edgetp finetune --kws --model "$m" --shots "$shots" --seeds "$seeds" --quiet --json "models/$m/results/$tag-$shots.json" "$@"
}
if want eval-mcu; then
  for k in 1 5 all; do
    ft kws-mcu tp-classes-b1 $k 3 --train all --targets classes --batch 1 --lr 1e-4 --optimizer adam
    ft kws-mcu tp-classes-b1-colnorm $k 3 --train all --targets classes --batch 1 --lr 1e-4 --optimizer colnorm --no-baseline
    ft kws-mcu tp-classes-b1-fixed $k 3 --train all --targets classes --batch 1 --lr 1e-4 --fixed --no-baseline
    ft kws-mcu readout-b1 $k 3 --train readout --targets classes --batch 1 --lr 3e-4 --optimizer adam --no-baseline
    ft kws-mcu tp-batchrule-b8 $k 3 --train all --targets batch --batch 8 --lr 1e-4 --optimizer adam --no-baseline
  done
  ft kws-mcu tp-classes-b1-lr3e-5x6 5 3 --train all --lr 3e-5 --epochs 6 --optimizer adam --no-baseline
  ft kws-mcu tp-classes-b1-colnorm-lr3e-5x6 5 3 --train all --lr 3e-5 --epochs 6 --optimizer colnorm --no-baseline
  ft kws-mcu tp-classes-b8-reh3 5 3 --train all --targets classes --batch 8 --lr 3e-4 --epochs 6 --rehearsal 3 --optimizer adam --no-baseline
  ft kws-mcu readout-b8-reh3 5 3 --train readout --targets classes --batch 8 --lr 3e-4 --epochs 6 --rehearsal 3 --optimizer adam --no-baseline
fi
if want eval-paper; then   # kws-paper's recorded defaults: classes, batch 8, Adam 2e-4, 6 epochs, rehearsal 4
  P="--train all --targets classes --batch 8 --lr 2e-4 --epochs 6 --rehearsal 4"
  R="--train readout --targets classes --batch 8 --lr 2e-4 --epochs 6 --rehearsal 4"
  ft kws-paper tp-classes-b8-reh4 5 3 $P --no-baseline
  ft kws-paper readout-b8-reh4 5 3 $R --no-baseline
  ft kws-paper tp-classes-b8-reh4 1 3 $P --no-baseline
  ft kws-paper readout-b8-reh4 1 3 $R --no-baseline
  ft kws-paper tp-batchrule-b8-reh4 5 3 --train all --targets batch --batch 8 --lr 2e-4 --epochs 6 --rehearsal 4 --no-baseline
  ft kws-paper tp-classes-b8-reh4 all 2 $P --no-baseline
  ft kws-paper readout-b8-reh4 all 2 $R --no-baseline
  # batch 1 without rehearsal (the on-device regime, Adam as the authors)
  ft kws-paper tp-classes-b1 5 2 --train all --targets classes --batch 1 --lr 1e-4 --epochs 3 --rehearsal 0 --no-baseline
  ft kws-paper readout-b1 5 2 --train readout --targets classes --batch 1 --lr 3e-4 --epochs 3 --rehearsal 0 --no-baseline
fi
if want device-mcu; then   # whole-firmware figures of the card's "On a device" (edgetp hil --json)
  mkdir -p models/kws-mcu/device
  edgetp hil --target qemu --model kws-mcu --shots 1 --quiet --json models/kws-mcu/device/hil-qemu.json
fi
python3 -m edgetp.kws.card models/kws-mcu models/kws-paper
