"""Time `load_html` on nested unclosed table cells, `"<table><tr><td>a" * n` (issue 22, finding 5).

Each n runs in a fresh interpreter under `--timeout` seconds (a quadratic parser at n=20,000 runs
for minutes), and prints the wall and CPU seconds, the input size, and the text and blocks it made.
The tests (tests/test_html_tables_linear.py) count work instead of timing it.

Example usage:

    HF_HUB_OFFLINE=1 PYTHONPATH=$PWD .venv/bin/python bench/html_tables.py --n 2000 20000 --timeout 120
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

_ONE = """
import sys, time
from pathlib import Path
from rag.load.html_page import load_html
data = b"<table><tr><td>a" * int(sys.argv[1])
wall, cpu = time.perf_counter(), time.process_time()
parsed = load_html(Path("x.html"), data)
print(f"{time.perf_counter() - wall:.2f} {time.process_time() - cpu:.2f} {len(data)} "
      f"{sum(len(b.text) for b in parsed.blocks)} {len(parsed.blocks)}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    print(f"{'n':>8} {'bytes':>9} {'wall s':>8} {'cpu s':>8} {'text chars':>12} {'blocks':>7}")
    for n in args.n:
        started = time.perf_counter()
        try:
            out = subprocess.run(
                [sys.executable, "-c", _ONE, str(n)], capture_output=True, text=True, timeout=args.timeout, check=True
            ).stdout.split()
        except subprocess.TimeoutExpired:
            print(f"{n:>8} {16 * n:>9} {'>' + format(time.perf_counter() - started, '.0f'):>8} (killed)")
            continue
        wall, cpu, size, chars, blocks = out
        print(f"{n:>8} {int(size):>9} {wall:>8} {cpu:>8} {int(chars):>12,} {blocks:>7}")


if __name__ == "__main__":
    main()
