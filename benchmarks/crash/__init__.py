"""The crash harness's parts (benchmarks/crash_harness.py is its command line)."""
