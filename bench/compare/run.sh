#!/usr/bin/env bash
# The side-by-side comparison in one command (see run.py for what it measures):
#   bench/compare/run.sh            full run (several minutes), as root
#   bench/compare/run.sh --quick    small loads, a smoke run
# Results: bench/compare/results/<date>.json and .svg
exec python3 "$(dirname "$0")/run.py" "$@"
