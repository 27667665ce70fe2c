"""Pure core: bytes in, bytes out. No files, clocks, global randomness or subprocesses."""
