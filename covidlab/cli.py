"""``covidlab-data``: download the sources, plan and build the papers' datasets, check them.

Examples::

    covidlab-data download demo           # about 150 MB: what the demo profile needs
    covidlab-data download all            # every source and Cohen snapshot the papers need
    covidlab-data plan coronet            # requested / available / used, from metadata alone
    covidlab-data build all --seed 0      # every paper's manifest from the sources
    covidlab-data build all --sources ../shared/data/sources --out /tmp/recipes   # offline
    covidlab-data verify

Every error is one line that names the file and says what to do; the exit status is 1 (2 for
a mistyped command line).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from covidlab import config


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``covidlab-data`` console script; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # argparse has printed the usage and what was wrong
        return stop.code if isinstance(stop.code, int) else 2
    with warnings.catch_warnings():
        warnings.showwarning = _print_warning
        try:
            return args.run(args)
        except KeyboardInterrupt:
            print("covidlab-data: interrupted; re-run to resume", file=sys.stderr)
            return 130
        except Exception as error:  # one line, never a traceback
            if os.environ.get("COVIDLAB_DEBUG"):
                raise
            print(f"covidlab-data: error: {_one_line(error)}", file=sys.stderr)
            return 1


def _one_line(error: Exception) -> str:
    """The message of ``error`` on one line; unexpected kinds of error are named."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    text = " ".join(text.split()) or type(error).__name__
    expected = (OSError, RuntimeError, ValueError, KeyError)
    if not isinstance(error, expected):
        text = (
            f"{type(error).__name__}: {text} (unexpected: please report it with the command you "
            "ran; COVIDLAB_DEBUG=1 shows the traceback)"
        )
    return text


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"covidlab-data: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _download(args: argparse.Namespace) -> int:
    from covidlab import papers
    from covidlab.download import COHEN_COMMIT, SOURCES, fetch, fetch_demo_pack

    if args.commit and args.source in ("all", "demo"):
        raise ValueError("--commit needs one GitHub source, e.g. `download cohen --commit SHA`")
    if args.source == "demo":
        folder = fetch_demo_pack(args.data_dir, progress=not args.quiet)
        print(
            f"demo pack: {folder} (run the demo profile with COVIDLAB_DATA_DIR set to its parent)"
        )
        return 0
    wanted = [(name, args.commit) for name in (SOURCES if args.source == "all" else [args.source])]
    if args.source == "all":  # the later Cohen snapshots some papers need
        later = sorted({papers.get(key).cohen_snapshot for key in papers.ALL} - {COHEN_COMMIT})
        wanted += [("cohen", commit) for commit in later]
    for name, commit in wanted:
        folder = fetch(name, args.data_dir, commit=commit, progress=not args.quiet)
        print(f"{name}{f' at {commit[:7]}' if commit else ''}: {folder}")
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
        _print_table(result.table, result.notes)
    return 0


def _plan(args: argparse.Namespace) -> int:
    from covidlab.download import COHEN_COMMIT, locate_sources
    from covidlab.recipes import RECIPES, plan_recipe, recipe_name

    if args.profile == "smoke":
        raise ValueError("the smoke profile uses synthetic images; plan `--profile paper` or demo")
    names = RECIPES if args.paper == "all" else [recipe_name(args.paper, args.variant)]
    for name in names:
        if args.profile == "paper":  # the full recipe from the downloaded sources
            sources, max_per_class, commit = locate_sources(args.data_dir), None, None
        else:  # what a demo chapter draws: its sources, its cap, the pinned Cohen snapshot
            from covidlab import profiles  # (imports Keras: a few seconds)

            run = profiles.resolve(name.split("_dataset")[0], "demo")
            sources, max_per_class = profiles.sources_dir(run), run.max_per_class
            commit = COHEN_COMMIT
        sources = args.sources or sources
        plan = plan_recipe(
            name,
            sources,
            max_per_class=max_per_class,
            extra_covid_sources=args.extra_covid_sources,
            cohen_commit=commit,
        )
        cap = f", at most {max_per_class} per class" if max_per_class else ""
        print(f"\n{name} at the {args.profile} profile{cap}, sources {sources}")
        _print_table(plan.table, plan.notes)
    return 0


def _print_table(table, notes: list[str]) -> None:
    print(table.drop(columns="note").to_string(index=False))
    for note in [*table["note"][table["note"] != ""], *notes]:
        print(f"  note: {note}")


def _verify(args: argparse.Namespace) -> int:
    from covidlab.download import verify

    report = verify(args.data_dir)
    for name, status in report.items():
        print(f"{name:14s} {status}")
    fine = ("ok", "not downloaded", "present")
    problems = [status for status in report.values() if not status.startswith(fine)]
    return 1 if problems else 0


def _whole_number(minimum: int):
    """argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be a whole number of at least {minimum}, not {text!r}"
            )
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    from covidlab.download import SOURCES
    from covidlab.papers import ALL

    parser = argparse.ArgumentParser(prog="covidlab-data", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", type=Path, default=None, help="data folder (default: $COVIDLAB_DATA_DIR)"
    )
    commands = parser.add_subparsers(required=True, metavar="{download,plan,build,verify}")

    download = commands.add_parser("download", parents=[common], help="fetch the sources")
    download.add_argument(
        "source",
        nargs="?",
        choices=[*SOURCES, "all", "demo"],
        default="all",
        help="one source, all of them (the default: about 1.5 GB, plus the later Cohen "
        "snapshot three papers need), or demo (about 150 MB: Cohen and a fixed subset of "
        "Kermany, enough for the demo profile)",
    )
    download.add_argument(
        "--commit",
        default=None,
        help="another commit of a GitHub source (40 hex digits, or 6a42423), unpacked beside "
        "the pinned one",
    )
    download.add_argument("--quiet", action="store_true", help="no progress bars")
    download.set_defaults(run=_download)

    plan = commands.add_parser(
        "plan",
        parents=[common],
        help="requested / available / used per class, from the metadata alone (no images)",
    )
    plan.add_argument("paper", choices=[*ALL, "all"])
    plan.add_argument("--profile", choices=("paper", "demo", "smoke"), default="paper")
    plan.add_argument("--variant", default=None, help="e.g. dataset2 for apostolopoulos")
    plan.add_argument("--sources", type=Path, default=None, help="unpacked sources folder")
    plan.add_argument(
        "--extra-covid-sources", action="store_true", help="add Figure1 and Actualmed COVID-19"
    )
    plan.set_defaults(run=_plan)

    build = commands.add_parser("build", parents=[common], help="build papers' manifests")
    build.add_argument("paper", choices=[*ALL, "all"])
    build.add_argument("--variant", default=None, help="e.g. dataset2 for apostolopoulos")
    build.add_argument("--sources", type=Path, default=None, help="unpacked sources folder")
    build.add_argument("--out", type=Path, default=None, help="default: <data-dir>/recipes")
    build.add_argument("--seed", type=_whole_number(0), default=0)
    build.add_argument(
        "--max-per-class", type=_whole_number(1), default=None, help="at most N images per class"
    )
    build.add_argument(
        "--extra-covid-sources", action="store_true", help="add Figure1 and Actualmed COVID-19"
    )
    build.set_defaults(run=_build)

    verify = commands.add_parser("verify", parents=[common], help="check downloads")
    verify.set_defaults(run=_verify)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
