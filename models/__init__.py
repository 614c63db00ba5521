"""Shipped pretrained models (installed as ``edgetp.models``); each folder holds
``model.npz`` and a model card ``README.md``."""
