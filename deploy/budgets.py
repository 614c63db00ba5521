"""The device tier's budgets (issue 14; the per-frame ones of issue 28 are targets, not yet these): what `edgetp hil`
checks a whole-firmware session against and the tests hold the shipped device models to.

RAM / flash: the nRF52840 class: kws-mcu may use 160 KB of its 256 KB RAM for learning and 512 KB of its 1 MB flash
(kws-mcu-64k stays within 64 KB of RAM). Steps and the frontend hop: instructions (QEMU -icount), per 10 ms frame.
"""
BUDGETS = {"train_step": 800_000, "infer_step": 200_000, "ram": 160 * 1024, "flash": 512 * 1024,
           "frontend_hop": 150_000}
RAM_64K = 64 * 1024   # kws-mcu-64k's tier
