"""firmware_gen: integer edgetp model -> C arrays and C learning routines.

- :func:`firmware_gen.generate.render` writes the C99 export (``edgetp export --c``);
- :func:`firmware_gen.tensors.state_tensors` / :func:`~firmware_gen.tensors.state_digest`
  are the Python twins of the device's tensor table and digest; :class:`~firmware_gen.tensors.TableDevice`
  is the integer reference driven like the C API (``edgetp.fixed.device.RefDevice``) with that table;
- :mod:`firmware_gen.cases` and :mod:`firmware_gen.script_finetune` write the scripts (:mod:`firmware_gen.script`)
  that ``edgetp verify-c`` plays on the firmware and the reference (deploy/bitexact.py).

See docs/firmware-gen.md and docs/firmware-api.md.
"""

# Bump when the generated C changes (the stamp of every generated file carries it).
__version__ = "1.0.0"
