/* etp_crt.c -- the C start of every emulated board, after its reset code has set the stack
 * pointer: copy .data from flash, zero .bss, paint the stack (for the high-water mark the
 * port reports), call main. The symbols come from etp_image.ld. */
#include <stdint.h>

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_bottom__, __stack_top__;
extern int main(int argc, char **argv);
void etp_crt_start(void);
uint32_t etp_stack_used(void);

#define STACK_PAINT 0xC0FFEE11u

__attribute__((noreturn)) void etp_crt_start(void) {
    uint32_t *src = &__etext, *dst = &__data_start__;
    while (dst < &__data_end__) *dst++ = *src++;
    for (dst = &__bss_start__; dst < &__bss_end__; dst++) *dst = 0;
    /* paint the stack below the current frame (and a 64-byte margin) */
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    for (dst = &__stack_bottom__; (uintptr_t)(dst + 16) < sp; dst++) *dst = STACK_PAINT;
    main(0, 0);
    for (;;) { }
}

uint32_t etp_stack_used(void) {
    uint32_t *p = &__stack_bottom__;
    while (p < &__stack_top__ && *p == STACK_PAINT) p++;
    return (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)p);
}
