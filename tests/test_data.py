"""Tests for covidlab.data: manifests, image loading, tf.data pipeline, splits, synthetic images."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidlab import data

CLASSES = ["covid", "normal", "bacterial", "viral"]


def _manifest(paths, labels, patients=None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": [str(p) for p in paths],
            "label": labels,
            "patient_id": patients
            if patients is not None
            else [f"p{i}" for i in range(len(paths))],
            "source": "test",
        }
    )


def _gradient(height: int, width: int) -> np.ndarray:
    """A smooth 8-bit gradient, so resizing barely changes values."""
    y, x = np.mgrid[0:height, 0:width]
    return (40 + 150 * (x / (width - 1)) * (0.5 + 0.5 * y / (height - 1))).astype(np.uint8)


@pytest.fixture
def image_files(tmp_path):
    """The same 48x64 gradient saved in the formats the loaders must read."""
    gray = _gradient(48, 64)
    files = {}
    files["L"] = tmp_path / "gray.png"
    Image.fromarray(gray).save(files["L"])
    files["RGB"] = tmp_path / "rgb.png"
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(files["RGB"])
    files["RGBA"] = tmp_path / "rgba.png"
    alpha = np.full_like(gray, 128)
    Image.fromarray(np.stack([gray, gray, gray, alpha], axis=-1)).save(files["RGBA"])
    files["LA"] = tmp_path / "gray_alpha.png"
    Image.fromarray(np.stack([gray, alpha], axis=-1), mode="LA").save(files["LA"])
    files["I;16"] = tmp_path / "gray16.png"
    Image.fromarray(gray.astype(np.uint16) * 257).save(files["I;16"])
    files["JPEG"] = tmp_path / "gray.jpg"
    Image.fromarray(gray).save(files["JPEG"], quality=95)
    return gray, files


# ---------------------------------------------------------------- manifests


def test_validate_manifest_names_missing_columns():
    with pytest.raises(ValueError, match=r"patient_id.*source"):
        data.validate_manifest(pd.DataFrame({"path": ["a.png"], "label": ["covid"]}))


def test_validate_manifest_rejects_empty_values_and_missing_files(tmp_path):
    df = _manifest([tmp_path / "a.png"], ["covid"], patients=[None])
    with pytest.raises(ValueError, match="patient_id"):
        data.validate_manifest(df)
    df = _manifest([tmp_path / "absent.png"], ["covid"])
    data.validate_manifest(df)  # files are not checked unless asked
    with pytest.raises(ValueError, match="absent.png"):
        data.validate_manifest(df, check_files=True)


def test_manifest_round_trip_stores_relative_paths(tmp_path):
    inside = tmp_path / "images" / "a.png"
    outside = tmp_path.parent / "elsewhere.png"
    df = _manifest([inside, outside], ["covid", "normal"], patients=["1", "002"])
    df["view"] = ["PA", None]
    csv_path = data.write_manifest(df, tmp_path / "manifest.csv")

    stored = pd.read_csv(csv_path, dtype=str)
    assert stored["path"].tolist() == ["images/a.png", str(outside)]

    moved = tmp_path / "moved"
    moved.mkdir()
    os.replace(csv_path, moved / "manifest.csv")
    back = data.read_manifest(moved / "manifest.csv")
    assert back["path"].tolist() == [str(moved / "images" / "a.png"), str(outside)]
    assert back["patient_id"].tolist() == ["1", "002"]  # ids stay strings, zeros kept
    assert back["view"].iloc[0] == "PA"


def test_write_manifest_is_atomic(tmp_path, monkeypatch):
    csv_path = tmp_path / "manifest.csv"
    df = _manifest([tmp_path / "a.png"], ["covid"])
    data.write_manifest(df, csv_path)
    before = csv_path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(OSError, match="disk full"):
        data.write_manifest(_manifest([tmp_path / "b.png"], ["normal"]), csv_path)
    assert csv_path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.csv"]


def test_read_manifest_names_the_file_when_columns_are_missing(tmp_path):
    csv_path = tmp_path / "bad.csv"
    pd.DataFrame({"filename": ["a.png"], "label": ["covid"]}).to_csv(csv_path, index=False)
    with pytest.raises(ValueError, match=r"bad\.csv.*path"):
        data.read_manifest(csv_path)


def test_merge_labels_and_class_counts():
    df = _manifest(["a", "b", "c", "d"], ["covid", "bacterial", "viral", "normal"])
    merged = data.merge_labels(df, {"bacterial": "pneumonia", "viral": "pneumonia"})
    assert data.class_counts(merged).to_dict() == {"covid": 1, "normal": 1, "pneumonia": 2}
    assert df["label"].tolist() == ["covid", "bacterial", "viral", "normal"]  # copy


def test_labels_to_indices_and_unknown_labels():
    indices = data.labels_to_indices(["viral", "covid", "viral"], CLASSES)
    assert indices.tolist() == [3, 0, 3]
    with pytest.raises(ValueError, match="'fungal'"):
        data.labels_to_indices(["covid", "fungal"], CLASSES)
    assert set(CLASSES) <= set(data.CLASS_NAMES_DISPLAY)


def test_importing_data_does_not_import_tensorflow():
    code = "import sys, covidlab.data; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


# ---------------------------------------------------------------- load_image


@pytest.mark.parametrize("kind", ["L", "LA", "RGB", "RGBA", "I;16", "JPEG"])
def test_load_image_reads_every_format_to_the_same_pixels(image_files, kind):
    gray, files = image_files
    image = data.load_image(files[kind], (48, 64))
    assert image.shape == (48, 64, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 255.0
    tolerance = 2.0 if kind == "JPEG" else 1e-3
    np.testing.assert_allclose(image[..., 1], gray, atol=tolerance)
    np.testing.assert_allclose(image[..., 0], image[..., 2], atol=tolerance)


def test_load_image_palette(tmp_path):
    path = tmp_path / "palette.png"
    image = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    image.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    image.save(path)
    pixels = data.load_image(path, (2, 2))
    np.testing.assert_allclose(pixels[0, 1], [200, 100, 50])


def test_load_image_pad_keeps_aspect_ratio_with_black_borders(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((20, 40), 200, np.uint8)).save(path)
    padded = data.load_image(path, (40, 40), resize="pad")
    assert padded.shape == (40, 40, 3)
    np.testing.assert_array_equal(padded[:10], 0)  # top border
    np.testing.assert_array_equal(padded[30:], 0)  # bottom border
    np.testing.assert_allclose(padded[10:30], 200, atol=1e-3)
    stretched = data.load_image(path, (40, 40), resize="stretch")
    np.testing.assert_allclose(stretched, 200, atol=1e-3)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "readable")],
)
def test_load_image_bad_files_name_the_file(tmp_path, content, reason):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(data.ImageDecodeError, match=reason) as error:
        data.load_image(path, (8, 8))
    assert "broken.png" in str(error.value) and "remove its row" in str(error.value)
    assert error.value.path == str(path)


def test_load_image_missing_file(tmp_path):
    with pytest.raises(data.ImageDecodeError, match="not found"):
        data.load_image(tmp_path / "nowhere.png", (8, 8))


def _blank_png(path: Path, width: int, height: int) -> Path:
    """A valid black grayscale PNG of any size, written row by row (tiny on disk)."""
    import struct
    import zlib

    def chunk(kind: bytes, content: bytes) -> bytes:
        crc = zlib.crc32(kind + content) & 0xFFFFFFFF
        return struct.pack(">I", len(content)) + kind + content + struct.pack(">I", crc)

    packer, row = zlib.compressobj(9), bytes(width + 1)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("side", [7_000, 14_000])  # 49 MP: over our limit; 196 MP: over Pillow's
def test_an_image_with_too_many_pixels_is_refused_before_decoding(tmp_path, side):
    path = _blank_png(tmp_path / "huge.png", side, side)
    assert path.stat().st_size < 250_000  # a small file that would decode to gigabytes
    for attempt in (
        lambda: data.load_image(path, (8, 8)),
        lambda: data.check_image(path),
        lambda: data.make_dataset(_manifest([path], ["covid"]), CLASSES, 8),
    ):
        with pytest.raises(data.ImageDecodeError, match=r"huge\.png.*MAX_IMAGE_PIXELS"):
            attempt()


def test_check_image_decodes_and_so_finds_a_truncated_jpeg(tmp_path):
    complete = tmp_path / "complete.jpeg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300), np.uint8)).save(complete)
    data.check_image(complete)
    truncated = tmp_path / "truncated.jpeg"
    truncated.write_bytes(complete.read_bytes()[: complete.stat().st_size // 2])
    with Image.open(truncated) as image:
        image.verify()  # what the recipes used to rely on: it passes
    with pytest.raises(data.ImageDecodeError, match=r"truncated\.jpeg.*truncated"):
        data.check_image(truncated)


def test_written_manifests_are_readable_by_everyone(tmp_path):
    csv_path = data.write_manifest(_manifest([tmp_path / "a.png"], ["covid"]), tmp_path / "m.csv")
    assert csv_path.stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------- make_dataset


def _collect(dataset):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.concatenate(images), np.concatenate(labels)


def test_make_dataset_decodes_every_format_like_load_image(image_files):
    gray, files = image_files
    kinds = list(files)
    df = _manifest(
        [files[k] for k in kinds], ["covid", "normal", "viral", "covid", "normal", "viral"]
    )
    images, labels = _collect(data.make_dataset(df, CLASSES, (24, 32), batch_size=4))
    assert images.shape == (6, 24, 32, 3) and images.dtype == np.float32
    assert labels.dtype == np.float32
    np.testing.assert_array_equal(labels.argmax(1), [0, 1, 3, 0, 1, 3])
    np.testing.assert_array_equal(labels.sum(1), 1.0)
    for image, kind in zip(images, kinds, strict=True):
        assert 0.0 <= image.min() and image.max() <= 255.0
        reference = data.load_image(files[kind], (24, 32))
        if kind == "JPEG":  # TensorFlow's and Pillow's JPEG decoders differ slightly
            assert np.abs(image - reference).mean() < 1.0
        else:
            np.testing.assert_allclose(image, reference, atol=1e-3, err_msg=kind)


def test_make_dataset_pad_leaves_black_rows_and_keeps_aspect(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((30, 90), 180, np.uint8)).save(path)
    df = _manifest([path], ["covid"])
    (padded,), _ = _collect(data.make_dataset(df, CLASSES, (60, 60), resize="pad"))
    content_rows = np.flatnonzero(padded.max(axis=(1, 2)) > 0)
    # 90x30 scaled into 60x60 is 60x20, centred: rows 20..39 carry the image.
    assert content_rows.tolist() == list(range(20, 40))
    np.testing.assert_array_equal(padded[:20], 0)
    np.testing.assert_array_equal(padded[40:], 0)
    np.testing.assert_allclose(padded[20:40], 180, atol=1e-3)
    np.testing.assert_allclose(padded, data.load_image(path, (60, 60), resize="pad"), atol=1e-3)

    (stretched,), _ = _collect(data.make_dataset(df, CLASSES, (60, 60), resize="stretch"))
    np.testing.assert_allclose(stretched, 180, atol=1e-3)


def test_make_dataset_shuffles_differently_each_epoch(tmp_path):
    df = data.synthetic_manifest(tmp_path, ["covid", "normal"], 8, image_size=16)
    dataset = data.make_dataset(df, ["covid", "normal"], 16, batch_size=16, shuffle=True, seed=1)
    first, second = (_collect(dataset)[0].mean(axis=(1, 2, 3)) for _ in range(2))
    assert not np.array_equal(first, second)
    np.testing.assert_allclose(np.sort(first), np.sort(second), rtol=1e-6)
    unshuffled = data.make_dataset(df, ["covid", "normal"], 16, batch_size=16)
    assert np.array_equal(*(_collect(unshuffled)[0] for _ in range(2)))


def test_make_dataset_rejects_unknown_labels_and_bad_files(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(good)
    with pytest.raises(ValueError, match="'fungal'"):
        data.make_dataset(_manifest([good], ["fungal"]), CLASSES, 8)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(data.ImageDecodeError, match=r"empty\.png.*empty"):
        data.make_dataset(_manifest([good, empty], ["covid", "covid"]), CLASSES, 8)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(data.ImageDecodeError, match=r"notes\.png"):
        data.make_dataset(_manifest([text], ["covid"]), CLASSES, 8)


# ---------------------------------------------------------------- splits


@pytest.fixture
def multi_image_manifest() -> pd.DataFrame:
    """24 patients per class, 1 to 4 images each (no files needed for splitting)."""
    rows = []
    rng = np.random.default_rng(0)
    for label in CLASSES:
        for patient in range(24):
            for image in range(rng.integers(1, 5)):
                rows.append((f"/x/{label}/{patient}-{image}.png", label, f"{label}-{patient}"))
    return pd.DataFrame(rows, columns=["path", "label", "patient_id"]).assign(source="test")


def test_holdout_split_keeps_patients_apart_and_classes_balanced(multi_image_manifest):
    df = multi_image_manifest
    train, test = data.holdout_split(df, 0.25, seed=0)
    assert len(train) + len(test) == len(df)
    assert set(train["path"]).isdisjoint(test["path"])
    data.assert_patient_disjoint(train, test)
    patients_in_test = test.groupby("label")["patient_id"].nunique()
    assert patients_in_test.to_dict() == dict.fromkeys(CLASSES, 6)  # 25% of 24 per class
    again, _ = data.holdout_split(df, 0.25, seed=0)
    pd.testing.assert_frame_equal(train, again)
    other_seed, _ = data.holdout_split(df, 0.25, seed=1)
    assert set(other_seed["patient_id"]) != set(train["patient_id"])


def test_kfold_splits_cover_every_image_once_without_shared_patients(multi_image_manifest):
    df = multi_image_manifest
    folds = data.kfold_splits(df, 4, seed=0)
    assert len(folds) == 4
    test_paths = [path for _, test in folds for path in test["path"]]
    assert sorted(test_paths) == sorted(df["path"])
    overall = df["label"].value_counts(normalize=True)
    for train, test in folds:
        data.assert_patient_disjoint(train, test)
        assert len(train) + len(test) == len(df)
        share = test["label"].value_counts(normalize=True)
        assert (share - overall).abs().max() < 0.1


def test_image_level_splits_leak_patients(multi_image_manifest):
    df = multi_image_manifest
    train, test = data.holdout_split(df, 0.25, seed=0, group=None)
    with pytest.raises(data.PatientLeakError) as error:
        data.assert_patient_disjoint(train, test)
    shared = set(train["patient_id"]) & set(test["patient_id"])
    assert error.value.shared_ids == sorted(shared)
    assert sorted(shared)[0] in str(error.value)
    folds = data.kfold_splits(df, 4, seed=0, group=None)
    assert any(set(a["patient_id"]) & set(b["patient_id"]) for a, b in folds)


def test_holdout_split_rejects_bad_fraction(multi_image_manifest):
    with pytest.raises(ValueError, match="test_fraction"):
        data.holdout_split(multi_image_manifest, 1.5, seed=0)


# ---------------------------------------------------------------- synthetic images


def test_synthetic_manifest_writes_deterministic_pngs(tmp_path):
    df = data.synthetic_manifest(
        tmp_path / "a", ["covid", "normal"], 6, image_size=(40, 48), seed=3, patients_per_class=2
    )
    assert len(df) == 12 and (df["source"] == "synthetic").all()
    assert all(os.path.isfile(p) for p in df["path"])
    assert set(df["patient_id"]) == {
        f"synthetic-{c}-00{i}" for c in ("covid", "normal") for i in (0, 1)
    }
    with Image.open(df["path"].iloc[0]) as image:
        assert image.mode == "L" and image.size == (48, 40)
    pd.testing.assert_frame_equal(data.read_manifest(tmp_path / "a" / "manifest.csv"), df)

    same = data.synthetic_manifest(
        tmp_path / "b", ["covid", "normal"], 6, image_size=(40, 48), seed=3, patients_per_class=2
    )
    other = data.synthetic_manifest(
        tmp_path / "c", ["covid", "normal"], 6, image_size=(40, 48), seed=4
    )

    def contents(manifest):
        return [Path(p).read_bytes() for p in manifest["path"]]

    assert contents(df) == contents(same)
    assert contents(df) != contents(other)


def _pixels(df: pd.DataFrame) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p), np.float32) for p in df["path"]])


def test_synthetic_classes_differ_where_they_should(tmp_path):
    df = data.synthetic_manifest(tmp_path, CLASSES + ["fungal"], 12, seed=0)
    images = {label: _pixels(group) for label, group in df.groupby("label")}
    # Lung fields (rows 30..90%, columns either side of the spine) are darkest when normal.
    lungs = np.r_[8:26, 38:56]
    brightness = {k: v[:, 20:58][:, :, lungs].mean() for k, v in images.items()}
    assert brightness["normal"] + 10 < min(brightness[k] for k in ("covid", "bacterial", "viral"))
    # Bacterial consolidation is one-sided: the two lungs differ most.
    asymmetry = {
        k: np.abs(v[:, 20:58, 8:26] - v[:, 20:58, 38:56][:, :, ::-1]).mean()
        for k, v in images.items()
    }
    assert max(asymmetry, key=asymmetry.get) == "bacterial"
    # Viral texture is fine-grained: the most pixel-to-pixel variation inside the lungs.
    roughness = {
        k: np.abs(np.diff(v[:, 20:58][:, :, lungs], axis=2)).mean() for k, v in images.items()
    }
    assert max(roughness, key=roughness.get) == "viral"
    # An unknown class name gets its own pattern, the same every time.
    assert min(np.abs(images["fungal"].mean(0) - images[k].mean(0)).mean() for k in CLASSES) > 5


def test_synthetic_classes_are_learnable_on_new_patients(tmp_path):
    from sklearn.linear_model import LogisticRegression

    def features(seed):
        df = data.synthetic_manifest(tmp_path / str(seed), CLASSES, 15, image_size=32, seed=seed)
        return _pixels(df).reshape(len(df), -1) / 255, df["label"]

    model = LogisticRegression(max_iter=2000).fit(*features(0))
    x_new, y_new = features(1)
    assert (model.predict(x_new) == y_new).mean() > 0.8


def test_synthetic_manifest_rejects_more_patients_than_images(tmp_path):
    with pytest.raises(ValueError, match="patients_per_class"):
        data.synthetic_manifest(tmp_path, ["covid"], 3, patients_per_class=5)


# ---------------------------------------------------------------- real images


@pytest.mark.shared_data
def test_shared_sample_loads_through_make_dataset(shared_data):
    sample = pd.read_csv(shared_data / "sample" / "manifest.csv", dtype=str)
    sample_labels = {
        "COVID-19": "covid",
        "NORMAL": "normal",
        "PNEUMONIA-bacterial": "bacterial",
        "PNEUMONIA-viral": "viral",
    }
    manifest = pd.DataFrame(
        {
            "path": [str(shared_data / "sample" / name) for name in sample["filename"]],
            "label": sample["label"].map(sample_labels),
            "patient_id": sample["patient_id"],
            "source": sample["source_dataset"],
        }
    )
    manifest = data.validate_manifest(manifest, check_files=True)
    assert data.class_counts(manifest).to_dict() == dict.fromkeys(sorted(CLASSES), 60)
    few = manifest.groupby("label").head(2)
    images, labels = _collect(data.make_dataset(few, CLASSES, (64, 64), resize="pad"))
    assert images.shape == (8, 64, 64, 3)
    assert labels.sum(0).tolist() == [2.0] * 4
    assert 0 <= images.min() and images.max() <= 255 and images.std() > 10
    first = data.load_image(few["path"].iloc[0], (64, 64), resize="pad")
    np.testing.assert_allclose(images[0], first, atol=1e-2)
