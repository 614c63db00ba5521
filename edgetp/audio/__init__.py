"""Audio: WAV reading with one validation policy (``wav``) and the paper's feature frontend (``frontend``)."""
