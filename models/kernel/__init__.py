"""The real-kernel oracle: runner.c and the harness that boots Debian arm64 kernels."""
