"""`python -m bench [--edges N] [--quick] [--out FILE]`: the trace and risk-report benchmark (see BENCHMARKS.md)."""

from __future__ import annotations

import sys

from bench.trace_risk import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
