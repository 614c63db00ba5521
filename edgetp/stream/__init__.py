"""Keyword detection in a continuous 16 kHz stream (issue 32; docs/detect.md).

``features`` (the model's float frontend, causal and block by block), ``network`` (the float or integer network
stepped without resets: per-frame readout increments), ``detector`` (the windowed-margin detector, float and integer
step functions), ``build`` (a labelled evaluation stream from clips and noise), ``evaluate`` (miss rate, false alarms
per hour, DET).
"""
