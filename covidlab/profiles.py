"""Run profiles: the same chapter at three sizes.

Every chapter runs under one of three profiles, chosen by ``PROFILE`` in its parameters cell
or the ``COVIDLAB_PROFILE`` environment variable:

``smoke``
    Synthetic images, the smallest input the paper's backbones accept, one epoch, random
    weights, 8 images per class. Checks that the code runs (under a minute per chapter);
    its numbers mean nothing.
``demo``
    Real images from the shared sample of the sources, 64-128 pixel inputs, 15 epochs (or
    the paper's own, see :data:`DEMO_RECIPES`), random weights with batch-norm statistics
    re-estimated after training, at most 50 images per class. Runs on a laptop CPU in
    minutes; the models learn, but the numbers are far from the paper's.
``paper``
    The paper's own input size, optimiser, learning rate, batch size, epochs, protocol and
    ImageNet weights, on the full recipe. Needs a GPU (see :mod:`covidlab.cost`).

>>> config = resolve("coronet", "paper")
>>> config.learning_rate, config.batch_size, config.epochs, config.n_splits
(0.0001, 10, 80, 4)
"""

from __future__ import annotations

import dataclasses
import errno
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from covidlab import config as paths
from covidlab import papers
from covidlab.architectures import smallest_input_size
from covidlab.papers.spec import PaperSpec
from covidlab.run_config import RunConfig

if TYPE_CHECKING:
    from covidlab.recipes import RecipeResult

PROFILES = ("smoke", "demo", "paper")

# Why smoke runs eagerly: measured with ``train_and_evaluate`` on the course's 2-core CPU
# (12 training + 4 test synthetic images, batch 8, one epoch; wall seconds, machine shared):
#   VGG19 32x32          graph 17.5 s   eager  9.0 s
#   MobileNetV2 32x32    graph 29.7 s   eager 13.4 s
#   ResNet50 32x32       graph 41.0 s   eager 12.0 s
#   Xception 71x71       graph 31.4 s   eager 14.1 s
#   InceptionResNetV2 75x100 (bare Keras loop) graph 143 s   eager 26 s
# Graph mode spends a tiny run tracing the training step; jit_compile=False made no
# consistent difference. With more images tracing pays off (96 images x 4 epochs:
# VGG19 64x64 graph 44 s vs eager 231 s, Xception 71x71 51 s vs 100 s), so demo and paper
# profiles use graph mode.
SMOKE = {"epochs": 1, "batch_size": 8, "max_per_class": 8, "max_splits": 2, "run_eagerly": True}

# Demo: from-scratch training on the shared sample that learns on a 2-core CPU. Measured there
# (patient-disjoint hold-out, balanced accuracy after batch-norm recalibration): MobileNetV2
# 64x64, 15 epochs, 3 classes 0.78; CoroNet (Xception 71x71), 15 epochs, 4 classes 0.78;
# ResNet50 64x64, 15 epochs, COVID-19 vs normal 0.87. Four epochs were too few: the models
# answered one class. A paper whose batch is smaller than 16 keeps its own batch (more steps
# per epoch on a small training set); one that trains fewer epochs keeps its own epochs.
DEMO = {
    "shorter_side": 64,
    "epochs": 15,
    "batch_size": 16,
    "max_per_class": 50,
    "max_splits": 3,
    "run_eagerly": False,
}

# Where a paper needs the demo's own recipe to learn from random weights, and why. Each entry
# replaces DEMO's values for that paper; the banner and every table say "demo recipe".
DEMO_RECIPES = {
    # 40 training images: 15 epochs of 6 steps do not move VGG19 from random weights; the
    # paper's own 50 epochs of batch 7 (300 steps) do (balanced accuracy 0.92 on 8 images).
    "covidx_net": {"epochs": 50, "why": "the paper's 50 epochs: 40 training images"},
    # A frozen base: its features are computed once and the head trains for the paper's 80
    # epochs in seconds. Frozen *random* features need 128 px to tell 3 classes apart
    # (VGG16 at 64 px, 15 epochs: balanced accuracy 0.44; at 128 px, 80 epochs: 0.71, 14 s).
    "soares": {
        "shorter_side": 128,
        "epochs": 80,
        "why": "the paper's 80 epochs on a frozen base, at 128 px",
    },
    # CoroNet on a 2-core CPU: each Xception fit costs ~13 s of graph compilation plus ~4 s an
    # epoch. DEMO's 15 epochs took 4.5 min for the 3 folds (balanced accuracy 0.75); 10 epochs
    # take ~3 min and reach 0.79. The 3-class and binary models fine-tune 1 epoch (not a
    # quarter of 10): balanced accuracy 0.87 and 0.93, ~25 s per fold and task.
    "coronet": {
        "epochs": 10,
        "fine_tune_epochs": 1,
        "why": "10 epochs; 3-class and binary models fine-tuned 1 epoch, first fold only",
    },
}

# The models a run trains when the chapter names none: a smoke run of every backbone would not
# fit in a minute, and on a 2-core CPU DenseNet201, InceptionV3, Xception and
# InceptionResNetV2 take several minutes each for a demo run (measured by the chapters), so
# smoke trains the cheapest model and demo the paper's best plus its cheapest where a paper
# compares many. A profile missing here trains every model of the paper (always so for
# ``paper``). A notebook may pass ``models=...`` to ``resolve`` to train others.
PROFILE_MODELS = {
    "covidx_net": {"smoke": ("MobileNetV2",), "demo": ("VGG19", "MobileNetV2")},
    # Soares demo: VGG16 only. With frozen *random* bases the authors' head on ResNet50 and
    # Xception answered one class for every test image (128 px, 80 epochs, balanced accuracy
    # 0.33 for both; 0.33-0.67 over learning rates 1e-4 to 1e-2 and 2 seeds): their features
    # come at scales the head cannot start from (Xception ~1e-5). The chapter measures their
    # frozen features instead of training them (VGG16 over 3 seeds: 0.73-0.80).
    "soares": {"smoke": ("VGG16", "ResNet50"), "demo": ("VGG16",)},
    "aboughazala": {"smoke": ("ResNet50",)},
    # Demo: MobileNetV2 only (3 folds, 64x85, 10 epochs: balanced accuracy 0.78 on Dataset_1,
    # 0.74 on Dataset_2). VGG19 with its first 18 layers frozen at random does not learn
    # (hold-out 0.33, one class; 3 folds 0.49, 90 % of images called pneumonia, never normal):
    # after its 13 frozen random convolutions 6.5 % of the signal differs between images (input:
    # 43 %; covidlab.frozen); chapter 07 measures that instead. The paper profile trains all five.
    "apostolopoulos": {"smoke": ("MobileNetV2",), "demo": ("MobileNetV2",)},
    "coronet": {"smoke": ("CoroNet",)},
}

#: What each profile's images are, in words (``RunConfig.data``, banners and captions).
DATA = {"smoke": "synthetic", "demo": "shared sample", "paper": "full sources"}


def default_profile() -> str:
    """``$COVIDLAB_PROFILE`` if set, else ``"smoke"``."""
    return check_profile(os.environ.get("COVIDLAB_PROFILE") or "smoke", "COVIDLAB_PROFILE")


def check_profile(profile: str | None, where: str = "profile=") -> str:
    """``profile`` when it is one of :data:`PROFILES`, :func:`default_profile` when None;
    otherwise a ValueError that names the choices and ``where`` the name came from."""
    if profile is None:
        return default_profile()
    if profile not in PROFILES:
        raise ValueError(
            f"unknown profile {profile!r} (from {where}); choose one of {', '.join(PROFILES)}"
        )
    return profile


def resolve(
    paper_key_or_spec: str | PaperSpec, profile: str | None = None, **overrides
) -> RunConfig:
    """The :class:`RunConfig` of one paper under one profile.

    Parameters
    ----------
    paper_key_or_spec
        A key of :data:`covidlab.papers.ALL` (e.g. ``"coronet"``) or a ``PaperSpec``.
    profile
        ``"smoke"``, ``"demo"`` or ``"paper"``; None uses :func:`default_profile`.
    **overrides
        Replace any field of the result, e.g. ``epochs=2`` or ``models=("VGG19",)``.
    """
    spec = paper_key_or_spec
    if isinstance(spec, str):
        spec = papers.get(spec)
    profile = check_profile(profile)
    unknown = set(overrides) - {f.name for f in dataclasses.fields(RunConfig)}
    if unknown:
        raise TypeError(
            f"resolve() got unknown setting(s) {sorted(unknown)}; "
            f"RunConfig fields are {[f.name for f in dataclasses.fields(RunConfig)]}"
        )
    models = _check_models(overrides.get("models") or _default_models(spec, profile), spec)
    common = {
        "profile": profile,
        "paper_key": spec.key,
        "classes": tuple(spec.classes),
        "resize": spec.resize,
        "optimizer": spec.optimizer,
        "learning_rate": spec.learning_rate,
        "test_fraction": spec.test_fraction,
        "validation_fraction": spec.validation_fraction,
        "data": DATA[profile],
        "seed": 0,
        "models": models,
    }
    if profile == "paper":
        settings = {
            "image_size": tuple(spec.input_size),
            "epochs": spec.epochs,
            "batch_size": spec.batch_size,
            "weights": "imagenet",
            "n_splits": spec.n_splits,
            "max_per_class": None,
            "run_eagerly": False,
            "notes": f"{spec.short_name}'s own settings on the full recipe",
        }
    else:
        sizes = SMOKE if profile == "smoke" else {**DEMO, **DEMO_RECIPES.get(spec.key, {})}
        shorter = max(sizes.get("shorter_side", 0), _smallest_valid_input(spec, models))
        batch_size = (
            sizes["batch_size"] if profile == "smoke" else min(sizes["batch_size"], spec.batch_size)
        )
        why = f" ({sizes['why']})" if "why" in sizes else ""
        settings = {
            "image_size": _keep_aspect(shorter, spec),
            "epochs": sizes["epochs"] if profile == "smoke" else min(sizes["epochs"], spec.epochs),
            "batch_size": batch_size,
            "weights": None,
            "n_splits": None if spec.n_splits is None else min(spec.n_splits, sizes["max_splits"]),
            "max_per_class": sizes["max_per_class"],
            "run_eagerly": sizes["run_eagerly"],
            "notes": (
                f"{profile} recipe{why}: random weights, reduced size and data, "
                "not the paper's settings"
            ),
        }
    config = RunConfig(**common, **settings)
    return dataclasses.replace(config, **{**overrides, "models": models})


def _default_models(spec: PaperSpec, profile: str) -> tuple[str, ...]:
    if profile == "paper":
        return tuple(spec.models)
    fallback = (spec.default_model,) if profile == "smoke" else tuple(spec.models)
    return PROFILE_MODELS.get(spec.key, {}).get(profile, fallback)


def _check_models(models: tuple[str, ...], spec: PaperSpec) -> tuple[str, ...]:
    if isinstance(models, str):  # models="VGG19" means one model, not five letters
        models = (models,)
    missing = [name for name in models if name not in spec.models]
    if missing:
        raise ValueError(
            f"{spec.short_name} has no model(s) {missing}; choose from {list(spec.models)}"
        )
    return tuple(models)


def _smallest_valid_input(spec: PaperSpec, models: tuple[str, ...]) -> int:
    """The smallest side every one of ``models`` accepts (Inception needs 75, Xception 71)."""
    return max(smallest_input_size(spec.models[name].backbone) for name in models)


def _keep_aspect(shorter_side: int, spec: PaperSpec) -> tuple[int, int]:
    """A square input, or the paper's aspect ratio when it pads (Apostolopoulos' 200x266)."""
    if spec.resize != "pad":
        return (shorter_side, shorter_side)
    height, width = spec.input_size
    scale = shorter_side / min(height, width)
    return (round(height * scale), round(width * scale))


def tag(run: RunConfig | str | None = None) -> str:
    """A short label for figures and tables, of a run or of a profile (None: the default).

    e.g. ``"smoke profile · synthetic data · weights: none"`` for a run's settings,
    ``"demo profile · shared sample data"`` for a chapter that trains nothing.
    """
    if not isinstance(run, RunConfig):
        profile = check_profile(run)
        return f"{profile} profile · {DATA[profile]} data"
    return f"{run.profile} profile · {run.data} data · weights: {run.weights or 'none'}"


def describe(run: RunConfig | str | None = None, *, folder: str | Path | None = None) -> str:
    """A one-line banner for the top of a chapter: a run's settings, or a profile's data and
    the sources ``folder`` it reads (a chapter that trains nothing).

    ``smoke`` names no folder: its stand-in lives in a fresh temporary folder whose name
    means nothing to a reader (and would change the page at every build).
    """
    if not isinstance(run, RunConfig):
        profile = check_profile(run)
        banner = f"Profile: {profile} | data: {DATA[profile]}"
        if folder is None:
            return banner
        return (
            f"{banner} | sources folder: "
            f"{'a temporary folder' if profile == 'smoke' else paths.display_path(folder)}"
        )
    config = run
    height, width = config.image_size
    protocol = (
        f"{config.n_splits}-fold CV"
        if config.n_splits is not None
        else f"hold-out {config.test_fraction:.0%} test"
    )
    return (
        f"Profile: {config.profile} | paper: {config.paper_key} | data: {config.data} | "
        f"input {height}x{width} ({config.resize}) | epochs {config.epochs} | "
        f"batch {config.batch_size} | {config.optimizer} lr {config.learning_rate:g} | "
        f"{protocol} | weights: {config.weights or 'none'} | models: {', '.join(config.models)}"
        f" | {config.notes}"
    )


def load_data(config: RunConfig, out_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The manifest a run of ``config`` trains and tests on.

    - ``"synthetic"`` (smoke): synthetic PNGs (:func:`covidlab.synthetic.synthetic_manifest`) in
      ``out_dir``; by default cached under ``<data_dir>/synthetic/`` (a temporary folder when
      that is not writable) and reused by later runs with the same settings.
    - ``"shared sample"`` (demo): the paper's recipe drawn from the shared offline copy of the
      sources, at most ``max_per_class`` images per class.
    - ``"full sources"`` (paper): the full recipe from the downloaded sources
      (``covidlab-data download``).
    """
    if config.data == "synthetic":
        return _synthetic(config, out_dir)
    return load_recipe(config).manifest


def load_recipe(
    config: RunConfig,
    *,
    variant: str | None = None,
    requested: Mapping[str, int] | None = None,
    scale: float | None = None,
) -> RecipeResult:
    """The run's images with the requested / available / used table of :mod:`covidlab.recipes`.

    A synthetic (smoke) run gets the same table, the paper's requested counts beside the
    synthetic images used, so a chapter shows one table on every profile. ``variant`` picks a
    paper's second dataset (Apostolopoulos' ``"dataset2"``) and ``requested`` its counts
    (default: the paper's ``recipe``). ``scale`` draws that share of the paper's counts,
    keeping its class proportions, instead of capping each class at ``max_per_class``.
    """
    from covidlab import recipes

    name = recipes.recipe_name(config.paper_key, variant)
    if config.data == "synthetic":
        manifest = _synthetic(config, None)
        requested = requested or papers.get(config.paper_key).recipe
        used = manifest["label"].value_counts()
        table = pd.DataFrame(
            {
                "class": list(requested),
                "drawn_from": "synthetic",
                "requested": list(requested.values()),
                "available": [int(used.get(label, 0)) for label in requested],
                "used": [int(used.get(label, 0)) for label in requested],
                "true_labels": "",
                "note": "synthetic images (smoke profile), not the paper's data",
            }
        )
        return recipes.RecipeResult(name, manifest, table, ["synthetic images"])
    from covidlab.download import COHEN_COMMIT

    caps = {"max_per_class": config.max_per_class} if scale is None else {"scale": scale}
    # The demo always draws from Cohen's pinned snapshot (what the shared sample and the demo
    # pack hold); the paper profile from the snapshot each paper's counts need.
    snapshot = {"cohen_commit": COHEN_COMMIT} if config.profile != "paper" else {}
    return recipes.build_recipe(
        config.paper_key, sources_dir(config), variant=variant, seed=config.seed, **caps, **snapshot
    )


def sources_dir(run: RunConfig | str | None = None, *, seed: int = 0) -> Path:
    """The sources folder a run (or a profile; None: the default) reads.

    ``smoke``: a synthetic stand-in laid out like the real downloads
    (:func:`covidlab.synthetic.synthetic_sources`, drawn with ``seed``), written to a fresh
    temporary folder on every call; its counts and pictures mean nothing. ``demo``: the small
    real copy of the sources beside the course (``shared/data/sources``), else the download.
    ``paper``: the full download in :func:`covidlab.config.data_dir`, with a warning when only
    the shared copy is found.
    """
    from covidlab.download import locate_sources

    profile = run.profile if isinstance(run, RunConfig) else check_profile(run)
    data = run.data if isinstance(run, RunConfig) else DATA[profile]
    if data == "synthetic":
        from covidlab.synthetic import synthetic_sources

        folder = Path(tempfile.mkdtemp(prefix="covidlab-synthetic-"))
        return synthetic_sources(folder, seed=seed)
    shared = paths.shared_data_dir()
    if data == "shared sample" and shared is not None and (shared / "sources").is_dir():
        return shared / "sources"
    try:
        found = locate_sources()
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"the {profile} profile needs real chest X-rays and none were found. "
            "Set COVIDLAB_SHARED_DATA to the course's shared data folder, or download the "
            "sources with `covidlab-data download` (stored under COVIDLAB_DATA_DIR), or run "
            f"with PROFILE='smoke' (synthetic images). Details: {error}"
        ) from error
    if data == "full sources" and shared is not None and found == shared / "sources":
        warnings.warn(
            f"using the small shared copy of the sources ({found}), not the full download: "
            "the recipe will fall short of the paper's counts (see the recipe table). Run "
            "`covidlab-data download` for the full sources.",
            stacklevel=3,
        )
    return found


def _synthetic(config: RunConfig, out_dir: str | os.PathLike | None) -> pd.DataFrame:
    from covidlab.data import folder_written_atomically, read_manifest
    from covidlab.synthetic import synthetic_manifest

    n_per_class = config.max_per_class or 8
    height, width = config.image_size

    def write(folder: str | os.PathLike) -> pd.DataFrame:
        return synthetic_manifest(
            folder, config.classes, n_per_class, image_size=(height, width), seed=config.seed
        )

    if out_dir is not None:
        return write(out_dir)
    name = f"{'-'.join(config.classes)}-{n_per_class}each-{height}x{width}-seed{config.seed}"
    cache = paths.data_dir() / "synthetic" / name
    if (cache / "manifest.csv").is_file():
        return read_manifest(cache / "manifest.csv")
    try:  # parallel runs never read half-written images (one that finishes first writes the same)
        with folder_written_atomically(cache) as staging:
            write(staging)
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        # read-only data folder: write to a fresh temporary folder instead
        return write(tempfile.mkdtemp(prefix=f"covidlab-{name}-"))
    return read_manifest(cache / "manifest.csv")
