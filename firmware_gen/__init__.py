"""firmware_gen: integer edgetp model -> C arrays and C learning routines."""
