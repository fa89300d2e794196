"""Collects the claim rows of every script's JSON into one Markdown table.

Usage: ``python paper_figures/claims.py [DIR]`` prints the table "claim — paper —
sigcnn — verdict" of the JSON files in DIR (default paper_figures/results/), one
block per figure, with the run time and whether it was a ``--quick`` run, as
pasted into paper_figures/README.md.
"""

from __future__ import annotations

import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(folder: str) -> str:
    """The Markdown table of the claims in `folder`'s JSON files."""
    rows = ["| figure | claim | paper | sigcnn | verdict |", "|---|---|---|---|---|"]
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            rec = json.load(f)
        name = rec.get("figure", os.path.basename(path)[:-5])
        if rec.get("quick"):
            name += " (quick)"
        if rec.get("external"):
            name += f" ({rec['external']})"
        for c in rec.get("claims", []):
            cells = [name] + [_cell(c.get(k, "")) for k in ("claim", "paper",
                                                              "sigcnn", "verdict")]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = argv[0] if argv else os.path.join(HERE, "results")
    print(table(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
