"""Audio: WAV reading with one validation policy (``wav``), the paper's feature frontend (``frontend``)
and its integer twin, the frontend the device runs on raw audio (``frontend_q``)."""

FRONTENDS = ("float", "fixed")   # which of the two computes features (`--frontend` of finetune, data features)
