/* main.c -- the firmware's one main loop, the same on every target: bytes from the
 * port go to the protocol server, which runs the generated model (etp_model.h). While
 * part of a frame is held, the port waits at most ETP_IDLE_TIMEOUT_MS for the next byte;
 * after such a silence the partial frame is dropped (deploy/protocol.py). */
#include "etp_port.h"
#include "etp_server.h"

static etp_server_t server;

int main(int argc, char **argv) {
    port_init(argc, argv);
    etp_server_init(&server);
    for (;;) {
        int c = port_getc(etp_server_pending(&server) ? ETP_IDLE_TIMEOUT_MS : 0u);
        if (c >= 0) etp_server_feed(&server, (uint8_t)c);
        else etp_server_idle(&server);
    }
}
