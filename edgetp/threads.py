"""Thread settings a command applies where it starts (never at import).

numba's threads do the parallel work of training and inference; a multi-threaded BLAS
spinning beside them on 2 cores made training 8-30x slower (measured), so the commands
(``edgetp.cli.main``, the training loop ``edgetp.kws.train.fit``, the experiments) run
BLAS single-threaded for their duration, and restore the previous limits when they end.
"""

from __future__ import annotations

import functools

from threadpoolctl import threadpool_limits


def single_threaded_blas() -> threadpool_limits:
    """A context manager (threadpoolctl's) limiting every loaded BLAS to one thread.

    numba's ``np.dot`` calls scipy's own OpenBLAS: it is loaded first so that the
    limit covers it too."""
    import scipy.linalg.cython_blas  # noqa: F401

    return threadpool_limits(1, user_api="blas")


def blas_single_threaded(fn):
    """Decorator: ``fn`` runs under :func:`single_threaded_blas` (an entry point such as ``fit``)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with single_threaded_blas():
            return fn(*args, **kwargs)

    return run
