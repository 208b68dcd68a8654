"""Download, verify and unpack the public sources (same as ``covidlab-data download``).

Usage: ``python data_scripts/download_sources.py [cohen|kermany|figure1|actualmed|all|demo]
[--data-dir DIR] [--commit SHA] [--quiet]``. ``all`` (the default) also fetches the later
Cohen snapshot some papers need. All logic lives in ``covidlab.download``.
"""

import sys

from covidlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["download", *sys.argv[1:]]))
