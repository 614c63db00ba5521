"""The hand-written C99 runtime that `edgetp export --c` ships next to the generated
``etp_model.h``/``etp_model.c`` (a package so that its .c/.h files install with the wheel)."""

from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parent
# Sources compiled into every firmware. etp_bytes.c is also the byte helpers of
# deploy/firmware (link and server).
SOURCES = ("etp_kernels.c", "etp_update.c", "etp_network.c", "etp_api.c", "etp_bytes.c")
HEADERS = (
    "etp_contract.h",
    "etp_api.h",
    "etp_internal.h",
    "etp_primitives.h",
    "etp_kernels.h",
    "etp_update.h",
    "etp_bytes.h",
)
# The weight store (firmware_gen/store.py): compiled into a firmware whose port has a flash
# driver (deploy/firmware/etp_port.h).
STORE = ("etp_store.h", "etp_store.c")
# The integer audio frontend (edgetp/audio/frontend_q.py's twin): copied and compiled only
# into exports that carry it (render(..., frontend=...)), with the generated etp_frontend_cfg.c.
FRONTEND_SOURCES = ("etp_frontend.c", "etp_fe_stream.c")
FRONTEND_HEADERS = ("etp_frontend.h", "etp_fe_stream.h")
# The keyword detector on a stream (edgetp/stream/detector.py's step_q twin): copied and compiled
# only into exports that carry it (render(..., detector=...)), with the generated etp_det_cfg.h.
DETECT_SOURCES = ("etp_detect.c",)
DETECT_HEADERS = ("etp_detect.h",)
