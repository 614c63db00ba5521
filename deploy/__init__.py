"""deploy: serial protocol, host side and firmware targets (host pty, Cortex-M4)."""
