"""The running maximum's look-ahead A (issue 32): frame t is normalised by the running maximum of frame t + A.
One definition for the float frontend (``edgetp.kws.data.read_ahead``) and the integer one
(``edgetp.audio.frontend_q``)."""

from __future__ import annotations

import numpy as np

from edgetp.errors import EdgetpError


RUNNING_MAX_AHEAD_MAX = 200  # frames (2 s): a longer look-ahead is a latency no listener would wait for


def check_running_max_ahead(ahead, what: str) -> int:
    """``ahead`` as an int if the running maximum's look-ahead takes it (None / absent: 0, the plain causal
    maximum; a whole number 0..RUNNING_MAX_AHEAD_MAX frames), else an EdgetpError naming ``what``."""
    if ahead is None:
        return 0
    if (
        isinstance(ahead, bool)
        or not isinstance(ahead, (int, np.integer))
        or not 0 <= int(ahead) <= RUNNING_MAX_AHEAD_MAX
    ):
        raise EdgetpError(
            f"{what} must be a whole number of 10 ms frames in 0..{RUNNING_MAX_AHEAD_MAX} (frame t is "
            f"normalised by the running maximum of frame t + N), got {ahead!r}"
        )
    return int(ahead)
