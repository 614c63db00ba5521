/* etp_model.h -- TEST DOUBLE of the generated model header (firmware_gen writes the
 * real one). A counter-based fake model behind the real API (firmware_gen's etp_api.h),
 * for the protocol, transport and fault tests; its Python twin is fake_model.py.
 * Not a neural network. */
#ifndef ETP_MODEL_H
#define ETP_MODEL_H
#include <stdint.h>

#define ETP_N_IN 8
#define ETP_N_OUT 3
#define ETP_MODEL_HASH "fa4efa4efa4efa4e"
#define ETP_GEN_VERSION "fake-1"
#define ETP_X_FRAC 8
typedef int16_t etp_x_t;

#include "../../firmware_gen/runtime/etp_contract.h"   /* dtype codes (ETP_DTYPE_COUNT) */
#include "../../firmware_gen/runtime/etp_api.h"
#endif
