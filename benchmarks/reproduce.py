"""Reproduce the capacity results of arXiv 2605.10795 and write a report.

Run from the repository root::

    python benchmarks/reproduce.py --quick        # d = 8, 10, 12: a few minutes
    python benchmarks/reproduce.py                # d = 10 ... 40: hours today
    python benchmarks/reproduce.py --dims 10 16 20 --instances 20 --jobs 2

It takes the arguments of ``assoc-cvx reproduce`` and calls the same function,
:func:`assoc_cvx.reproduce.reproduce`; the default output folder here is
``benchmarks/results/reproduce`` (``--quick``: ``benchmarks/results/
reproduce-quick``). The folder receives ``report.md``, PNG figures,
``results.json`` and one JSON-lines checkpoint per (d, constraint set, rule):
rerunning the same command resumes from them. Progress goes to stderr.
"""

import sys
from pathlib import Path

from assoc_cvx.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a in ("-o", "--output") or a.startswith("--output=") for a in args):
        name = "reproduce-quick" if "--quick" in args else "reproduce"
        args += ["--output", str(Path(__file__).parent / "results" / name)]
    sys.exit(main(["reproduce", *args]))
