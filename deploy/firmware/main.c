/* main.c -- the firmware's one main loop, the same on every target: bytes from the
 * port go to the protocol server, which runs the generated model (etp_model.h). */
#include "etp_port.h"
#include "etp_server.h"

static etp_server_t server;

int main(int argc, char **argv) {
    port_init(argc, argv);
    etp_server_init(&server);
    for (;;) {
        int c = port_getc();
        if (c >= 0) etp_server_feed(&server, (uint8_t)c);
    }
}
