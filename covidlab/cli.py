"""``covidlab-data``: download the sources, build the papers' datasets, check what is there.

Examples::

    covidlab-data download demo           # about 150 MB: what the demo profile needs
    covidlab-data download all            # about 1.5 GB into ~/covidlab-data
    covidlab-data build all --seed 0               # every paper's manifest from the sources
    covidlab-data build all --sources ../shared/data/sources --out /tmp/recipes   # offline
    covidlab-data verify
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from covidlab import config


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``covidlab-data`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (OSError, RuntimeError, ValueError, KeyError) as error:
        print(f"covidlab-data: error: {error}", file=sys.stderr)
        return 1


def _download(args: argparse.Namespace) -> int:
    from covidlab.download import SOURCES, fetch, fetch_demo_pack

    if args.commit and args.source in ("all", "demo"):
        raise ValueError("--commit needs one GitHub source, e.g. `download cohen --commit SHA`")
    if args.source == "demo":
        folder = fetch_demo_pack(args.data_dir, progress=not args.quiet)
        print(
            f"demo pack: {folder} (run the demo profile with COVIDLAB_DATA_DIR set to its parent)"
        )
        return 0
    names = list(SOURCES) if args.source == "all" else [args.source]
    for name in names:
        folder = fetch(name, args.data_dir, commit=args.commit, progress=not args.quiet)
        print(f"{name}: {folder}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from covidlab.download import locate_sources
    from covidlab.recipes import RECIPES, build_recipe, recipe_name, write_recipe

    sources = args.sources or locate_sources(args.data_dir)
    out = args.out or (args.data_dir or config.data_dir()) / "recipes"
    names = RECIPES if args.paper == "all" else [recipe_name(args.paper, args.variant)]
    for name in names:
        result = build_recipe(
            name,
            sources,
            seed=args.seed,
            max_per_class=args.max_per_class,
            extra_covid_sources=args.extra_covid_sources,
        )
        folder = write_recipe(result, out)
        print(f"\n{name}: {len(result.manifest)} images -> {folder}")
        print(result.table.drop(columns="note").to_string(index=False))
        for note in [*result.table["note"][result.table["note"] != ""], *result.notes]:
            print(f"  note: {note}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from covidlab.download import verify

    report = verify(args.data_dir)
    for name, status in report.items():
        print(f"{name:10s} {status}")
    fine = ("ok", "not downloaded", "present")
    problems = [status for status in report.values() if not status.startswith(fine)]
    return 1 if problems else 0


def _parser() -> argparse.ArgumentParser:
    from covidlab.download import SOURCES
    from covidlab.papers import ALL

    parser = argparse.ArgumentParser(prog="covidlab-data", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", type=Path, default=None, help="data folder (default: $COVIDLAB_DATA_DIR)"
    )
    commands = parser.add_subparsers(required=True, metavar="{download,build,verify}")

    download = commands.add_parser("download", parents=[common], help="fetch the sources")
    download.add_argument(
        "source",
        nargs="?",
        choices=[*SOURCES, "all", "demo"],
        default="all",
        help="one source, all of them (the default, about 1.5 GB), or demo (about 150 MB: "
        "Cohen and a fixed subset of Kermany, enough for the demo profile)",
    )
    download.add_argument("--commit", default=None, help="another commit of a GitHub source")
    download.add_argument("--quiet", action="store_true", help="no progress bars")
    download.set_defaults(run=_download)

    build = commands.add_parser("build", parents=[common], help="build papers' manifests")
    build.add_argument("paper", choices=[*ALL, "all"])
    build.add_argument("--variant", default=None, help="e.g. dataset2 for apostolopoulos")
    build.add_argument("--sources", type=Path, default=None, help="unpacked sources folder")
    build.add_argument("--out", type=Path, default=None, help="default: <data-dir>/recipes")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--max-per-class", type=int, default=None)
    build.add_argument(
        "--extra-covid-sources", action="store_true", help="add Figure1 and Actualmed COVID-19"
    )
    build.set_defaults(run=_build)

    verify = commands.add_parser("verify", parents=[common], help="check downloads")
    verify.set_defaults(run=_verify)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
