"""Build the papers' datasets from the sources (same as ``covidlab-data build``).

Usage: ``python data_scripts/build_recipes.py all [--sources DIR] [--out DIR] [--seed N]
[--max-per-class N] [--extra-covid-sources]``. ``covidlab-data plan PAPER`` shows the same
table from the metadata alone. All logic lives in ``covidlab.recipes``.
"""

import sys

from covidlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["build", *sys.argv[1:]]))
