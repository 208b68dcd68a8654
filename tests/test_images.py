"""Tests for covidlab.images: the loaders (one decode and resize for tf.data and single images)
and the image statistics."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from manifests import manifest as _manifest
from PIL import Image

from covidlab import data, images, synthetic

CLASSES = ["covid", "normal", "bacterial", "viral"]


def _write(path, array, mode):
    Image.fromarray(array, mode=mode).save(path)
    return str(path)


def test_image_statistics_reads_file_properties_and_border(tmp_path):
    # a 40x20 (w x h) grey JPEG-free PNG: white border 1 px wide (5 % of 20 rows), black inside
    pixels = np.zeros((20, 40), dtype=np.uint8)
    pixels[0, :] = pixels[-1, :] = 255
    pixels[:, :2] = pixels[:, -2:] = 255
    stats = images.image_statistics(_write(tmp_path / "a.png", pixels, "L"))
    assert (stats["width"], stats["height"]) == (40, 20)
    assert stats["aspect_ratio"] == 2.0
    assert (stats["file_format"], stats["pixel_mode"]) == ("PNG", "L")
    assert stats["border_intensity"] == pytest.approx(1.0)
    assert stats["mean_intensity"] == pytest.approx(pixels.mean() / 255)
    assert stats["std_intensity"] == pytest.approx((pixels / 255).std(), rel=1e-5)


def test_image_statistics_rgb_jpeg_and_bad_file(tmp_path):
    rgb = np.full((30, 30, 3), 128, dtype=np.uint8)
    path = tmp_path / "b.jpg"
    Image.fromarray(rgb, mode="RGB").save(path, format="JPEG")
    stats = images.image_statistics(path)
    assert (stats["file_format"], stats["pixel_mode"]) == ("JPEG", "RGB")
    assert stats["mean_intensity"] == pytest.approx(128 / 255, abs=0.01)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    with pytest.raises(ValueError, match="broken.png"):
        images.image_statistics(broken)


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


# ---------------------------------------------------------------- load_image


@pytest.mark.parametrize("kind", ["L", "LA", "RGB", "RGBA", "I;16", "JPEG"])
def test_load_image_reads_every_format_to_the_same_pixels(image_files, kind):
    gray, files = image_files
    image = images.load_image(files[kind], (48, 64))
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
    pixels = images.load_image(path, (2, 2))
    np.testing.assert_allclose(pixels[0, 1], [200, 100, 50])


def test_load_image_pad_keeps_aspect_ratio_with_black_borders(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((20, 40), 200, np.uint8)).save(path)
    padded = images.load_image(path, (40, 40), resize="pad")
    assert padded.shape == (40, 40, 3)
    np.testing.assert_array_equal(padded[:10], 0)  # top border
    np.testing.assert_array_equal(padded[30:], 0)  # bottom border
    np.testing.assert_allclose(padded[10:30], 200, atol=1e-3)
    stretched = images.load_image(path, (40, 40), resize="stretch")
    np.testing.assert_allclose(stretched, 200, atol=1e-3)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "readable")],
)
def test_load_image_bad_files_name_the_file(tmp_path, content, reason):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(images.ImageDecodeError, match=reason) as error:
        images.load_image(path, (8, 8))
    assert "broken.png" in str(error.value) and "remove its row" in str(error.value)
    assert error.value.path == str(path)


def test_load_image_missing_file(tmp_path):
    with pytest.raises(images.ImageDecodeError, match="not found"):
        images.load_image(tmp_path / "nowhere.png", (8, 8))


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
        lambda: images.load_image(path, (8, 8)),
        lambda: images.check_image(path),
        lambda: images.make_dataset(_manifest([path], ["covid"]), CLASSES, 8),
    ):
        with pytest.raises(images.ImageDecodeError, match=r"huge\.png.*MAX_IMAGE_PIXELS"):
            attempt()


def test_check_image_decodes_and_so_finds_a_truncated_jpeg(tmp_path):
    complete = tmp_path / "complete.jpeg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300), np.uint8)).save(complete)
    images.check_image(complete)
    truncated = tmp_path / "truncated.jpeg"
    truncated.write_bytes(complete.read_bytes()[: complete.stat().st_size // 2])
    with Image.open(truncated) as image:
        image.verify()  # what the recipes used to rely on: it passes
    with pytest.raises(images.ImageDecodeError, match=r"truncated\.jpeg.*truncated"):
        images.check_image(truncated)


# ---------------------------------------------------------------- make_dataset


def _collect(dataset):
    batches, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.concatenate(batches), np.concatenate(labels)


def test_make_dataset_and_load_image_give_the_same_pixels(image_files):
    """Plots and Grad-CAM (load_image) show exactly what the model is tested on (make_dataset)."""
    gray, files = image_files
    kinds = list(files)
    df = _manifest(
        [files[k] for k in kinds], ["covid", "normal", "viral", "covid", "normal", "viral"]
    )
    batch, labels = _collect(images.make_dataset(df, CLASSES, (24, 32), batch_size=4))
    assert batch.shape == (6, 24, 32, 3) and batch.dtype == np.float32
    assert labels.dtype == np.float32
    np.testing.assert_array_equal(labels.argmax(1), [0, 1, 3, 0, 1, 3])
    np.testing.assert_array_equal(labels.sum(1), 1.0)
    for image, kind in zip(batch, kinds, strict=True):
        assert 0.0 <= image.min() and image.max() <= 255.0
        reference = images.load_image(files[kind], (24, 32))
        np.testing.assert_array_equal(image, reference, err_msg=kind)


def test_make_dataset_pad_leaves_black_rows_and_keeps_aspect(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((30, 90), 180, np.uint8)).save(path)
    df = _manifest([path], ["covid"])
    (padded,), _ = _collect(images.make_dataset(df, CLASSES, (60, 60), resize="pad"))
    content_rows = np.flatnonzero(padded.max(axis=(1, 2)) > 0)
    # 90x30 scaled into 60x60 is 60x20, centred: rows 20..39 carry the image.
    assert content_rows.tolist() == list(range(20, 40))
    np.testing.assert_array_equal(padded[:20], 0)
    np.testing.assert_array_equal(padded[40:], 0)
    np.testing.assert_allclose(padded[20:40], 180, atol=1e-3)
    np.testing.assert_allclose(padded, images.load_image(path, (60, 60), resize="pad"), atol=1e-3)

    (stretched,), _ = _collect(images.make_dataset(df, CLASSES, (60, 60), resize="stretch"))
    np.testing.assert_allclose(stretched, 180, atol=1e-3)


def test_make_dataset_shuffles_differently_each_epoch(tmp_path):
    df = synthetic.synthetic_manifest(tmp_path, ["covid", "normal"], 8, image_size=16)
    dataset = images.make_dataset(df, ["covid", "normal"], 16, batch_size=16, shuffle=True, seed=1)
    first, second = (_collect(dataset)[0].mean(axis=(1, 2, 3)) for _ in range(2))
    assert not np.array_equal(first, second)
    np.testing.assert_allclose(np.sort(first), np.sort(second), rtol=1e-6)
    unshuffled = images.make_dataset(df, ["covid", "normal"], 16, batch_size=16)
    assert np.array_equal(*(_collect(unshuffled)[0] for _ in range(2)))


def test_make_dataset_rejects_unknown_labels_and_bad_files(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(good)
    with pytest.raises(ValueError, match="'fungal'"):
        images.make_dataset(_manifest([good], ["fungal"]), CLASSES, 8)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(images.ImageDecodeError, match=r"empty\.png.*empty"):
        images.make_dataset(_manifest([good, empty], ["covid", "covid"]), CLASSES, 8)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(images.ImageDecodeError, match=r"notes\.png"):
        images.make_dataset(_manifest([text], ["covid"]), CLASSES, 8)


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
    batch, labels = _collect(images.make_dataset(few, CLASSES, (64, 64), resize="pad"))
    assert batch.shape == (8, 64, 64, 3)
    assert labels.sum(0).tolist() == [2.0] * 4
    assert 0 <= batch.min() and batch.max() <= 255 and batch.std() > 10
    first = images.load_image(few["path"].iloc[0], (64, 64), resize="pad")
    np.testing.assert_allclose(batch[0], first, atol=1e-2)


# ---------------------------------------------------------------- decoded_images: decode once


def _gray_files(folder: Path, count: int, size=(40, 50)) -> list[str]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"image{index}.png"
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _cached_keys(cache: Path) -> set[str]:
    """The keys of the images kept in ``cache``, each array checked against its keys file."""
    keys = set()
    for file in cache.glob("*.keys"):
        names = file.read_text().split()
        assert np.load(file.with_suffix(".npy")).shape[0] == len(names)
        keys.update(names)
    assert len(list(cache.glob("*.npy"))) == len(list(cache.glob("*.keys")))
    return keys


def test_decoded_images_are_kept_on_disk_and_read_back_in_any_order(tmp_path, monkeypatch):
    paths = _gray_files(tmp_path, 5)
    cache = tmp_path / "cache"
    monkeypatch.setattr(images, "_worker_count", lambda: 1)  # pieces of 3 images, as on 1 core
    first = images.decoded_images(paths, (16, 20), cache=cache)
    assert first.shape == (5, 16, 20, 3) and first.dtype == np.uint8
    assert len(_cached_keys(cache)) == 5 and not list(cache.glob(".*"))
    assert len(list(cache.glob("*.npy"))) == 2  # a file to a piece

    def no_decoding(*args):
        raise AssertionError("decoded again although the images are cached")

    monkeypatch.setattr(images, "_plan", no_decoding)
    again = images.decoded_images([paths[3], paths[0]], (16, 20), cache=cache)
    np.testing.assert_array_equal(again, first[[3, 0]])
    # another size or resize mode is another image
    with pytest.raises(AssertionError, match="decoded again"):
        images.decoded_images(paths[:1], (16, 16), cache=cache)
    with pytest.raises(AssertionError, match="decoded again"):
        images.decoded_images(paths[:1], (16, 20), "pad", cache=cache)


def test_a_changed_file_or_a_damaged_cache_file_is_decoded_again(tmp_path):
    paths = _gray_files(tmp_path, 2)
    cache = tmp_path / "cache"
    before = images.decoded_images(paths, 8, cache=cache)
    Image.fromarray(np.full((40, 50), 7, np.uint8)).save(paths[0])
    os.utime(paths[0], ns=(1, 1))  # a new modification time, whatever the clock's resolution
    after = images.decoded_images(paths, 8, cache=cache)
    np.testing.assert_array_equal(after[0], 7)
    np.testing.assert_array_equal(after[1], before[1])
    for file in cache.glob("*.npy"):
        file.write_bytes(file.read_bytes()[:20])  # cut short
    np.testing.assert_array_equal(images.decoded_images(paths, 8, cache=cache), after)
    # an array that does not hold as many images as its keys file names is not trusted
    # (the keys file stays as written, so its hash still matches its name)
    for file in cache.glob("*.keys"):
        names = file.read_text().split()
        np.save(file.with_suffix(".npy"), np.zeros((len(names) + 1, 8, 8, 3), np.uint8))
    np.testing.assert_array_equal(images.decoded_images(paths, 8, cache=cache), after)


def test_a_link_pointed_at_another_file_is_decoded_again(tmp_path):
    first, second = tmp_path / "seven.png", tmp_path / "nine.png"
    Image.fromarray(np.full((40, 50), 7, np.uint8)).save(first)
    Image.fromarray(np.full((40, 50), 9, np.uint8)).save(second)
    for file in (first, second):  # alike but for their pixels: size and modification time
        os.utime(file, ns=(10**18, 10**18))
    assert first.stat().st_size == second.stat().st_size
    link = tmp_path / "link.png"
    link.symlink_to(first)
    cache = tmp_path / "cache"
    np.testing.assert_array_equal(
        images.decoded_images([link], 8, cache=cache), images.load_image(first, 8)[None]
    )
    link.unlink()
    link.symlink_to(second)
    np.testing.assert_array_equal(
        images.decoded_images([link], 8, cache=cache), images.load_image(second, 8)[None]
    )


def test_without_cache_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path / "data"))
    paths = _gray_files(tmp_path, 2)
    with_cache = images.decoded_images(paths, 8)
    cache = tmp_path / "data" / "cache" / "decoded"
    assert len(_cached_keys(cache)) == 2
    written = sorted(cache.iterdir())
    np.testing.assert_array_equal(images.decoded_images(paths, 8, cache=False), with_cache)
    images.decoded_images(_gray_files(tmp_path / "data", 1), 8, cache=False)
    assert sorted(cache.iterdir()) == written


def test_runs_sharing_the_cache_at_once_get_the_same_images(tmp_path):
    """Four runs ask for different subsets, three times each, so that reads of the folder
    overlap other runs' writes."""
    paths = _gray_files(tmp_path, 40)
    expected = images.decoded_images(paths, (16, 20), cache=False)
    cache = tmp_path / "cache"

    def run(seed: int) -> None:
        for repeat in range(3):
            subset = np.random.default_rng([seed, repeat]).permutation(len(paths))[:25]
            got = images.decoded_images([paths[i] for i in subset], (16, 20), cache=cache)
            np.testing.assert_array_equal(got, expected[subset])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, range(4)))
    assert len(_cached_keys(cache)) == 40 and not list(cache.glob(".*"))


@pytest.mark.parametrize("damage", ["keys reordered", "header length", "zip file", "shape"])
def test_a_damaged_cache_piece_is_decoded_again(tmp_path, monkeypatch, damage):
    """What a damaged piece holds is never served: its images are decoded again."""
    paths = _gray_files(tmp_path, 6)
    monkeypatch.setattr(images, "_worker_count", lambda: 1)  # two pieces of three images
    cache = tmp_path / "cache"
    expected = images.decoded_images(paths, 8, cache=cache)
    for keys_file in cache.glob("*.keys"):
        array_file = keys_file.with_suffix(".npy")
        raw = bytearray(array_file.read_bytes())
        if damage == "keys reordered":  # would hand out each other's pixels
            first, second, third = keys_file.read_text().split()
            keys_file.write_text(f"{second}\n{first}\n{third}\n")
        elif damage == "header length":  # would shift every pixel by a byte
            raw[8] -= 1  # the little-endian header length of a version 1.0 .npy file
        elif damage == "zip file":  # np.load would return an NpzFile
            raw[:4] = b"PK\x03\x04"
        else:  # a negative number in the header's shape
            assert b"(3, 8, 8, 3)" in raw
            raw = raw.replace(b"(3, 8, 8, 3)", b"(-3, 8, 8, 3", 1)
        array_file.write_bytes(raw)
    np.testing.assert_array_equal(images.decoded_images(paths, 8, cache=cache), expected)


def test_a_damaged_image_is_named(tmp_path):
    paths = _gray_files(tmp_path, 2)
    Path(paths[1]).write_bytes(Path(paths[1]).read_bytes()[:60])  # header intact, data cut
    with pytest.raises(images.ImageDecodeError, match=r"image1\.png"):
        images.decoded_images(paths, 8, cache=tmp_path / "cache")


def test_a_damaged_image_among_many_pieces_is_named_and_the_others_are_kept(tmp_path):
    paths = _gray_files(tmp_path, 40)
    Path(paths[23]).write_bytes(Path(paths[23]).read_bytes()[:60])
    cache = tmp_path / "cache"
    with pytest.raises(images.ImageDecodeError, match=r"image23\.png"):
        images.decoded_images(paths, 8, cache=cache)
    # what was written is whole: every array in the cache matches its keys and reads back
    assert not list(cache.glob(".*"))
    kept = _cached_keys(cache)
    assert 0 < len(kept) < 40
    for file in cache.glob("*.npy"):
        assert np.load(file).shape[1:] == (8, 8, 3)


def test_pieces_hold_one_plan_each_and_cover_every_image_once(tmp_path, image_files):
    _, files = image_files
    paths = [str(path) for path in files.values()] + _gray_files(tmp_path / "more", 70)
    plan_of = {index: images._plan(path, 16, 16, "stretch") for index, path in enumerate(paths)}
    pieces = images._chunks(plan_of, paths, workers=2)
    covered = [index for _, indices in pieces for index in indices]
    assert sorted(covered) == list(range(len(paths)))
    assert all(plan_of[index] == plan for plan, indices in pieces for index in indices)
    assert all(len(indices) <= 32 for _, indices in pieces)
    # the 71 gray 8-bit PNGs of one plan are spread over at least two pieces per thread
    assert sum(plan_of[indices[0]].kind == "png" for _, indices in pieces) >= 4


def test_images_of_mixed_plans_decoded_together_match_one_by_one(tmp_path, image_files):
    _, files = image_files
    paths = [str(path) for path in files.values()] * 3 + _gray_files(tmp_path / "more", 9)
    together = images.decoded_images(paths, (20, 24), cache=False)
    for path, image in zip(paths, together, strict=True):
        np.testing.assert_array_equal(image, images.load_image(path, (20, 24)))


def _smooth(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return 30 + 200 * (0.5 + 0.5 * np.sin(x / width * 6) * np.cos(y / height * 4))


@pytest.mark.parametrize("size", [(64, 64), (100, 30)])
def test_large_jpeg_and_16_bit_png_shrink_like_a_full_resize(tmp_path, size):
    """A JPEG decoded at 1/8 or 1/4 of its size, and a 16-bit PNG reduced by whole blocks
    first, give what Pillow's antialiased resize of the full image gives."""
    pixels = _smooth(1200, 900)
    jpeg, png16 = tmp_path / "big.jpg", tmp_path / "big16.png"
    Image.fromarray(pixels.astype(np.uint8)).save(jpeg, quality=95)
    Image.fromarray((pixels * 257).astype(np.uint16)).save(png16)
    assert images._plan(str(jpeg), *size, "stretch").ratio in (4, 8)  # decoded scaled down
    expected = np.asarray(
        Image.fromarray(pixels.astype(np.float32)).resize(size[::-1], Image.BILINEAR)
    )
    for path in (jpeg, png16):
        difference = np.abs(images.load_image(path, size)[..., 0] - expected)
        assert difference.max() < 6 and difference.mean() < 1, (path.name, difference.mean())


def test_a_small_jpeg_is_enlarged_from_its_full_size(tmp_path):
    path = tmp_path / "small.jpg"
    Image.fromarray(np.full((10, 12), 90, np.uint8)).save(path, quality=95)
    assert images._plan(str(path), 40, 48, "stretch").ratio == 1
    np.testing.assert_allclose(images.load_image(path, (40, 48)), 90, atol=2)
