/* etp_model.h -- TEST DOUBLE for calibrating the instruction counter (Cortex-M only):
 * the fake model's header, with the calibration loop of etp_model.c behind it. */
#include "../etp_model.h"
