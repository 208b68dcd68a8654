"""Download, verify and unpack the public sources (same as ``covidlab-data download``).

Usage: ``python data_scripts/download_sources.py [cohen|kermany|figure1|actualmed|all]
[--data-dir DIR] [--commit SHA]``. All logic lives in ``covidlab.download``.
"""

import sys

from covidlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["download", *sys.argv[1:]]))
