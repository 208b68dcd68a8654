"""Run profiles: smoke and demo shrink a paper's run; the paper profile is the paper."""

from __future__ import annotations

import dataclasses
import errno
import os
import tempfile
from pathlib import Path

import pytest

from covidlab import config as paths
from covidlab import data, papers, profiles
from covidlab.architectures import smallest_input_size

ALL_CASES = [(key, profile) for key in papers.ALL for profile in profiles.PROFILES]


@pytest.mark.parametrize(("key", "profile"), ALL_CASES)
def test_every_paper_resolves_under_every_profile(key, profile):
    spec = papers.get(key)
    config = profiles.resolve(key, profile)
    assert config.profile == profile
    assert config.paper_key == key
    assert config.classes == spec.classes
    assert config.resize == spec.resize
    assert config.optimizer == spec.optimizer
    assert config.learning_rate == spec.learning_rate
    assert config.test_fraction == spec.test_fraction
    assert set(config.models) <= set(spec.models) and config.models
    height, width = config.image_size
    needed = max(smallest_input_size(spec.models[name].backbone) for name in config.models)
    assert min(height, width) >= needed  # every model this run trains accepts the input


@pytest.mark.parametrize("key", papers.ALL)
def test_paper_profile_is_the_paper(key):
    spec = papers.get(key)
    config = profiles.resolve(key, "paper")
    assert config.image_size == spec.input_size
    assert (config.epochs, config.batch_size) == (spec.epochs, spec.batch_size)
    assert config.n_splits == spec.n_splits
    assert config.validation_fraction == spec.validation_fraction
    assert config.weights == "imagenet"
    assert config.max_per_class is None
    assert config.data == "full sources"
    assert config.models == tuple(spec.models)
    assert not config.run_eagerly


def test_coronet_paper_settings_match_khan_et_al():
    config = profiles.resolve("coronet", "paper")
    # Khan et al. 2020: Adam, learning rate 1e-4, batch 10, 80 epochs, 4-fold CV
    assert (config.optimizer, config.learning_rate) == ("adam", 1e-4)
    assert (config.batch_size, config.epochs, config.n_splits) == (10, 80, 4)


@pytest.mark.parametrize("key", papers.ALL)
def test_smoke_profile_is_tiny(key):
    spec = papers.get(key)
    config = profiles.resolve(key, "smoke")
    assert (config.epochs, config.batch_size, config.max_per_class) == (1, 8, 8)
    assert config.weights is None and config.data == "synthetic" and config.run_eagerly
    needed = max(smallest_input_size(spec.models[name].backbone) for name in config.models)
    assert min(config.image_size) == needed  # the smallest valid input, no larger
    if spec.n_splits is not None:
        assert config.n_splits == min(spec.n_splits, 2)


@pytest.mark.parametrize("key", papers.ALL)
def test_demo_profile_fits_a_cpu(key):
    spec = papers.get(key)
    config = profiles.resolve(key, "demo")
    own = profiles.DEMO_RECIPES.get(key, {})
    assert 64 <= min(config.image_size) and max(config.image_size) <= 171  # 128 x (266 / 200)
    assert config.epochs == min(own.get("epochs", profiles.DEMO["epochs"]), spec.epochs)
    assert config.batch_size == min(spec.batch_size, 16)
    assert 40 <= config.max_per_class <= 60
    assert "demo recipe" in config.notes and "not the paper's" in config.notes
    assert "demo recipe" in profiles.describe(config)
    assert config.weights is None and config.data == "shared sample"
    if spec.n_splits is not None:
        assert config.n_splits == min(spec.n_splits, 3)


def test_padded_inputs_keep_apostolopoulos_aspect_ratio():
    # Apostolopoulos & Mpesiana 2020 pad to 200x266 (height x width)
    for profile in profiles.PROFILES:
        height, width = profiles.resolve("apostolopoulos", profile).image_size
        assert width / height == pytest.approx(266 / 200, rel=0.03)


def test_inception_needs_75_pixels_in_smoke():
    config = profiles.resolve("covidx_net", "smoke", models=("InceptionV3",))
    assert config.image_size == (75, 75)


def test_overrides_replace_fields():
    config = profiles.resolve("coronet", "paper", epochs=2, seed=3)
    assert (config.epochs, config.seed, config.batch_size) == (2, 3, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 5


def test_unknown_override_and_model_are_named():
    with pytest.raises(TypeError, match="epoch"):
        profiles.resolve("coronet", "smoke", epoch=2)
    with pytest.raises(ValueError, match="ResNet152"):
        profiles.resolve("coronet", "smoke", models=("ResNet152",))


def test_accepts_a_spec():
    config = profiles.resolve(papers.get("soares"), "paper")
    assert config.paper_key == "soares" and config.image_size == (237, 237)


def test_default_profile_reads_the_environment(monkeypatch):
    monkeypatch.delenv("COVIDLAB_PROFILE", raising=False)
    assert profiles.default_profile() == "smoke"
    monkeypatch.setenv("COVIDLAB_PROFILE", "demo")
    assert profiles.default_profile() == "demo"
    assert profiles.resolve("soares").profile == "demo"


def test_bad_profile_names_the_choices(monkeypatch):
    with pytest.raises(ValueError, match="smoke, demo, paper"):
        profiles.resolve("soares", "fast")
    monkeypatch.setenv("COVIDLAB_PROFILE", "full")
    with pytest.raises(ValueError, match="COVIDLAB_PROFILE"):
        profiles.default_profile()


def test_describe_and_tag():
    config = profiles.resolve("apostolopoulos", "smoke")
    banner = profiles.describe(config)
    assert banner.startswith("Profile: smoke | ")
    assert "data: synthetic" in banner and "input 32x43" in banner and "weights: none" in banner
    assert profiles.tag(config) == "smoke profile · synthetic data · weights: none"
    assert "weights: imagenet" in profiles.tag(profiles.resolve("coronet", "paper"))


def test_smoke_data_is_synthetic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path))
    config = profiles.resolve("soares", "smoke")
    first = profiles.load_data(config)
    assert data.class_counts(first).to_dict() == {c: 8 for c in config.classes}
    assert (first["source"] == "synthetic").all()
    assert all(path.startswith(str(tmp_path / "synthetic")) for path in first["path"])
    again = profiles.load_data(config)
    assert again["path"].tolist() == first["path"].tolist()
    elsewhere = profiles.load_data(config, out_dir=tmp_path / "mine")
    assert all(path.startswith(str(tmp_path / "mine")) for path in elsewhere["path"])


def test_smoke_data_goes_to_a_temporary_folder_when_the_data_folder_is_read_only(
    tmp_path, monkeypatch
):
    def read_only(folder, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(folder))

    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(data, "folder_written_atomically", read_only)
    (tmp_path / "temporary").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temporary"))
    manifest = profiles.load_data(profiles.resolve("soares", "smoke"))
    assert all(path.startswith(str(tmp_path / "temporary")) for path in manifest["path"])
    assert all(os.path.isfile(path) for path in manifest["path"])


def test_demo_without_real_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(paths, "shared_data_dir", lambda: None)
    with pytest.raises(FileNotFoundError, match="COVIDLAB_SHARED_DATA"):
        profiles.load_data(profiles.resolve("coronet", "demo"))


@pytest.mark.shared_data
def test_demo_data_is_a_capped_real_recipe(shared_data):
    config = profiles.resolve("coronet", "demo")
    manifest = profiles.load_data(config)
    counts = data.class_counts(manifest)
    assert set(counts.index) == set(config.classes)
    assert counts.max() <= config.max_per_class
    assert not (manifest["source"] == "synthetic").any()


def test_smoke_recipe_table_sets_the_papers_counts_beside_the_synthetic_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path))
    config = profiles.resolve("coronet", "smoke")
    recipe = profiles.load_recipe(config)
    table = recipe.table.set_index("class")
    # Khan et al. 2020, Table I: 284 COVID-19, 310 normal, 330 bacterial, 327 viral
    assert table["requested"].to_dict() == papers.get("coronet").recipe
    assert table["used"].to_dict() == data.class_counts(recipe.manifest).to_dict()
    assert (table["drawn_from"] == "synthetic").all()


@pytest.mark.shared_data
def test_demo_recipe_matches_load_data(shared_data):
    config = profiles.resolve("aboughazala", "demo")
    recipe = profiles.load_recipe(config)
    assert recipe.manifest["path"].tolist() == profiles.load_data(config)["path"].tolist()
    used = recipe.table.set_index("class")["used"]
    assert used.to_dict() == data.class_counts(recipe.manifest).to_dict()


def test_unknown_model_of_a_paper_names_the_choices():
    from covidlab import models

    spec = papers.get("soares")
    assert spec.model_spec() == spec.models["VGG16"]  # the headline model comes first
    with pytest.raises(KeyError, match="choose from"):
        spec.model_spec("ResNet152")
    with pytest.raises(KeyError, match="Soares has no model 'ResNet152'"):
        models.build_paper_model(spec, "ResNet152")


def test_profile_folders_and_captions(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path / "data"))
    assert profiles.tag("smoke").startswith("smoke profile · synthetic")
    banner = profiles.describe("demo", folder="/x")
    assert "demo" in banner and "/x" in banner
    # the course's shared copy reads the same on every machine: relative to the repository
    shared_sources = paths.REPO_ROOT.parent / "shared" / "data" / "sources"
    assert profiles.describe("demo", folder=shared_sources).endswith(
        "sources folder: ../shared/data/sources"
    )
    assert paths.display_path(Path.home() / "covidlab-data") == "~/covidlab-data"
    # smoke's stand-in sits in a fresh temporary folder: the banner does not print its path
    assert "/tmp/x" not in profiles.describe("smoke", folder="/tmp/x")
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.sources_dir("huge")
    monkeypatch.setattr(profiles.paths, "shared_data_dir", lambda: None)
    with pytest.raises(FileNotFoundError, match="COVIDLAB_SHARED_DATA"):
        profiles.sources_dir("demo")
