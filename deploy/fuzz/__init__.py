"""Fuzzing of the frame parsers: libFuzzer (clang) for the C side, see __main__.py."""
