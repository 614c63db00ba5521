"""edgetp: Traces Propagation (TP) for spiking neural networks, from a float
reference faithful to the authors' rule down to bit-exact microcontroller C."""

__version__ = "0.1.0"
