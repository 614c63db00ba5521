/* startup.c -- reset code of QEMU's RISC-V virt board (RV32, machine mode, -bios none: the core
 * enters at the start of DRAM, where etp_image.ld puts .text.init): global and stack pointer,
 * a trap vector, then C (etp_crt.c). */
__asm__(".section .text.init, \"ax\", @progbits\n"
        ".globl Reset_Handler\n"
        "Reset_Handler:\n"
        ".option push\n.option norelax\n"
        "    la gp, __global_pointer$\n"
        ".option pop\n"
        "    la sp, __stack_top__\n"
        "    la t0, etp_trap\n"
        ".option push\n.option arch, +zicsr\n"
        "    csrw mtvec, t0\n"
        ".option pop\n"
        "    j etp_crt_start\n"
        /* No interrupt is taken (mstatus.MIE stays 0; the UART's only wakes WFI): a trap is a
         * fault, and the host sees a device that stops answering. */
        ".balign 4\n"
        "etp_trap:\n"
        "    j etp_trap\n"
        ".text\n");
