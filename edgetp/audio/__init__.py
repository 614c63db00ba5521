"""Audio: WAV reading with one validation policy (``wav``), the paper's feature frontend (``frontend``)
and its integer twin, the frontend the device runs on raw audio (``frontend_q``: the pipeline; its tables
``frontend_q_tables``, kernels ``frontend_q_kernels``, streaming step ``frontend_q_stream``), 16 kHz int16
PCM (``pcm``) and the SNR checks between the two (``metrics``)."""

FRONTENDS = ("float", "fixed")  # which of the two computes features (`--frontend` of finetune, data features)
