"""Keyword-spotting and neuromorphic data.

- ``labels``: label sets (paper 36, common 12) and GSC's hash split rule;
- ``gsc``: reader of a GSC v2-layout corpus (``load_corpus`` -> ``Corpus``);
- ``splits``: the paper's speaker-adaptation split (``speaker_split``, ``speakers_by_count``);
- ``synth`` (+ ``espeak``, ``noise``): the offline espeak-ng corpus (``synth_kws``);
- ``cache``: memory-mapped feature cache (``cached_features``);
- ``neuromorphic``: SHD and N-MNIST through tonic, local files only.

Generated data lives where ``edgetp.paths`` says (``$EDGETP_HOME``, default
``~/.cache/edgetp``): the default corpus in ``kws-synth/`` (written by
``edgetp data prepare-default``, which ``setup.sh`` runs), features in ``features/``.
"""
