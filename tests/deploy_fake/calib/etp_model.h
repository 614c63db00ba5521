/* etp_model.h -- TEST DOUBLE for calibrating the instruction counter (Cortex-M only):
 * the API of ../etp_model.h (firmware_gen writes the real one). Not a neural network. */
#ifndef ETP_MODEL_H
#define ETP_MODEL_H
#include <stdint.h>

typedef enum { ETP_OK = 0, ETP_EBADARG = 1 } etp_status_t;
#define ETP_N_IN 8
#define ETP_N_OUT 3
#define ETP_MODEL_HASH "ca11b4a7e"
#define ETP_GEN_VERSION "fake-1"
#define ETP_X_FRAC 8
typedef int16_t etp_x_t;

etp_status_t etp_init(uint32_t seed);
void etp_reset_state(void);
etp_status_t etp_infer_step(const etp_x_t *x);
etp_status_t etp_train_step(const etp_x_t *x, uint16_t label);
uint16_t etp_predict(void);
uint32_t etp_state_digest(void);
typedef struct { const char *name; uint8_t dtype; uint8_t writable; uint32_t count; void *data; } etp_tensor_t;
uint32_t etp_tensor_count(void);
const etp_tensor_t *etp_tensor(uint32_t i);
#endif
