"""Images: the loaders (one decode and resize for training, plots and Grad-CAM) and
statistics of image files that carry no disease.

:func:`make_dataset` turns a manifest into a ``tf.data`` pipeline; :func:`load_image` loads
one image with the same TensorFlow decode and resize, so what a figure shows is what the
model saw. :func:`check_image` finds files the loaders would fail on. The statistics
(:func:`image_statistics_table`: size, format and intensity) let chapters look for what else
than the disease tells images apart (a source's file format, black padding, page margins).

TensorFlow is imported inside the loaders only: reading statistics stays quick to import.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image

from covidlab.data import labels_to_indices, validate_manifest

if TYPE_CHECKING:
    import tensorflow as tf


RESIZE_MODES = ("stretch", "pad")

#: The largest image (width x height) the loaders accept: about four times the largest
#: radiograph in the sources (9.5 megapixels). Decoding costs memory in proportion to the
#: pixel count, not the file size: a 190 KB PNG of 14000 x 14000 pixels would take 4 GiB in a
#: ``tf.data`` pipeline. Larger files are refused with an :class:`ImageDecodeError`.
MAX_IMAGE_PIXELS = 40_000_000

# The first bytes of the formats tf.io.decode_image understands.
_MAGIC_BYTES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageDecodeError(ValueError):
    """An image file is missing, empty or cannot be decoded.

    Parameters
    ----------
    path : str or Path
        The file that failed.
    reason : str
        What is wrong with it.
    """

    def __init__(self, path: str | os.PathLike, reason: str = "cannot be decoded") -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"Cannot read image {self.path}: {reason}. "
            "Re-download it or remove its row from the manifest."
        )


def size_pair(image_size: int | Sequence[int]) -> tuple[int, int]:
    """``64`` -> ``(64, 64)``; ``(height, width)`` -> ``(height, width)`` as ints."""
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = image_size
    return int(height), int(width)


def _check_resize(resize: str) -> None:
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, not {resize!r}.")


def load_image(
    path: str | os.PathLike,
    image_size: int | Sequence[int],
    resize: str = "stretch",
) -> np.ndarray:
    """Load one image as a float32 ``(height, width, 3)`` array in [0, 255].

    Decoded and resized by the same TensorFlow code as :func:`make_dataset`, so a plot or a
    Grad-CAM map shows exactly the pixels the model was tested on.

    Parameters
    ----------
    path : str or Path
        A PNG (8- or 16-bit; grayscale, grayscale+alpha, RGB, RGBA, palette) or JPEG file.
    image_size : int or (height, width)
        Output size.
    resize : {"stretch", "pad"}
        ``"stretch"`` ignores the aspect ratio; ``"pad"`` keeps it and fills the rest with
        black, centred (``tf.image.resize_with_pad``).

    Raises
    ------
    ImageDecodeError
        When the file is missing, empty, corrupt or larger than :data:`MAX_IMAGE_PIXELS`.
    """
    _check_resize(resize)
    height, width = size_pair(image_size)
    path = os.fspath(path)
    _check_image_file(path)
    import tensorflow as tf

    try:
        image = _decode_to_rgb(tf.io.read_file(path))
    except tf.errors.OpError as error:
        raise ImageDecodeError(path, f"not a readable image ({error.message})") from error
    return _resized(image, height, width, resize).numpy()


def _open_image(path: str | os.PathLike) -> Image.Image:
    """Open ``path`` with Pillow (header only), or raise :class:`ImageDecodeError` saying why.

    Refuses missing and empty files, files Pillow cannot identify, and images with more than
    :data:`MAX_IMAGE_PIXELS` pixels, before any pixel is decoded.
    """
    if not os.path.isfile(path):
        raise ImageDecodeError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise ImageDecodeError(path, "the file is empty (0 bytes)")
    too_large = (
        f"more than the {MAX_IMAGE_PIXELS:,} pixels the course accepts "
        "(covidlab.images.MAX_IMAGE_PIXELS); shrink the image or raise that limit"
    )
    try:
        with warnings.catch_warnings():  # Pillow warns from 89 megapixels; our limit is lower
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as error:  # over twice Pillow's own limit
        raise ImageDecodeError(path, f"its size is {too_large} ({error})") from error
    except Exception as error:  # UnidentifiedImageError, SyntaxError, struct.error, ...
        raise ImageDecodeError(path, f"not a readable image ({error})") from error
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise ImageDecodeError(path, f"{width} x {height} pixels is {too_large}")
    return image


def check_image(path: str | os.PathLike, *, decode: bool = True) -> None:
    """Raise :class:`ImageDecodeError` unless ``path`` is an image the loaders can read.

    With ``decode`` every byte of the image data is decoded, which is what catches a JPEG
    cut short by a failed download: its header is intact, so ``Image.verify()`` and
    ``Image.open`` accept it, and only decoding finds the missing data. JPEGs are decoded at
    1/8 scale (Pillow's ``draft``), which reads all of the data at a fraction of the cost.
    """
    with _open_image(path) as image:
        if not decode:
            return
        if image.format == "JPEG":
            image.draft(image.mode, (image.width // 8, image.height // 8))
        try:
            image.load()  # (unless PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set, hiding it)
        except Exception as error:  # Pillow raises many types for damaged files
            raise ImageDecodeError(path, f"not a readable image ({error})") from error


def _check_image_file(path: str) -> None:
    """Raise ImageDecodeError unless ``path`` starts like an image TensorFlow decodes and is
    no larger than :data:`MAX_IMAGE_PIXELS` (read from its header; nothing is decoded)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(8)
    except FileNotFoundError:
        raise ImageDecodeError(path, "file not found") from None
    if not header:
        raise ImageDecodeError(path, "the file is empty (0 bytes)")
    if not any(header.startswith(magic) for magic in _MAGIC_BYTES):
        raise ImageDecodeError(path, f"not a PNG or JPEG file (it starts with {header!r})")
    _open_image(path).close()


def _decode_to_rgb(contents: tf.Tensor) -> tf.Tensor:
    """Decode PNG (8/16-bit) or JPEG bytes to a float32 HxWx3 tensor in [0, 255]."""
    import tensorflow as tf

    def decode_png() -> tf.Tensor:
        # Decoding at 16 bits repeats each 8-bit value in both bytes (v * 257), so one
        # division by 257 gives [0, 255] for 8-bit and 16-bit PNGs alike.
        image = tf.io.decode_png(contents, channels=0, dtype=tf.uint16)
        return tf.cast(image, tf.float32) / 257.0

    def decode_other() -> tf.Tensor:
        image = tf.io.decode_image(contents, channels=0, expand_animations=False)
        return tf.cast(image, tf.float32)

    is_png = tf.equal(tf.strings.substr(contents, 0, len(_PNG_SIGNATURE)), _PNG_SIGNATURE)
    image = tf.cond(is_png, decode_png, decode_other)

    def gray_to_rgb() -> tf.Tensor:
        gray = tf.ensure_shape(image[..., :1], [None, None, 1])
        return tf.image.grayscale_to_rgb(gray)

    # 1 (gray) or 2 (gray + alpha) channels -> RGB; 3 or 4 (RGBA) -> RGB without alpha.
    image = tf.cond(tf.shape(image)[-1] < 3, gray_to_rgb, lambda: image[..., :3])
    return tf.ensure_shape(image, [None, None, 3])


def _resized(image: tf.Tensor, height: int, width: int, resize: str) -> tf.Tensor:
    """Resize a decoded image as every loader does: stretched or padded, kept in [0, 255]."""
    import tensorflow as tf

    if resize == "stretch":
        image = tf.image.resize(image, (height, width), antialias=True)
    else:
        image = tf.image.resize_with_pad(image, height, width, antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def make_dataset(
    manifest: pd.DataFrame,
    classes: Sequence[str],
    image_size: int | Sequence[int],
    *,
    resize: str = "stretch",
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    cache: bool = True,
    repeat: bool = False,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(images, one_hot_labels)`` batches from a manifest.

    Each file is read, decoded (PNG 8/16-bit or JPEG; gray, gray+alpha, RGB, RGBA), turned
    into 3 channels, resized and returned as float32 in [0, 255]. The model applies its own
    ``preprocess_input``; nothing is normalised here.

    Parameters
    ----------
    manifest : DataFrame
        Rows to load (see ``MANIFEST_COLUMNS``).
    classes : sequence of str
        Class names; the one-hot columns follow this order.
    image_size : int or (height, width)
        Output size.
    resize : {"stretch", "pad"}
        ``"stretch"``: ``tf.image.resize`` to the size, aspect ratio lost. ``"pad"``:
        ``tf.image.resize_with_pad``, aspect ratio kept with black borders, as Apostolopoulos &
        Mpesiana (2020) did for their 200x266 inputs.
    batch_size : int
        Images per batch (the last batch may be smaller).
    shuffle : bool
        Shuffle the whole set, differently at every epoch, starting from ``seed``.
    seed : int
        Seed of the shuffle.
    cache : bool
        Keep decoded, resized images in memory after the first epoch.
    repeat : bool
        Repeat forever (then pass ``steps_per_epoch`` to ``fit``).

    Raises
    ------
    ValueError
        When a label is not in ``classes`` (naming it).
    ImageDecodeError
        When a file is missing, empty, not a PNG/JPEG, or larger than
        :data:`MAX_IMAGE_PIXELS` (from its header). A file whose data is damaged further in
        fails during iteration with TensorFlow's error; ``check_image`` names it.
    """
    _check_resize(resize)
    height, width = size_pair(image_size)
    manifest = validate_manifest(manifest)
    if manifest.empty:
        raise ValueError("The manifest has no rows; there is nothing to load.")
    indices = labels_to_indices(manifest["label"], classes)
    paths = manifest["path"].tolist()
    for path in paths:
        _check_image_file(path)

    import tensorflow as tf

    def load(path: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = _resized(_decode_to_rgb(tf.io.read_file(path)), height, width, resize)
        return image, tf.one_hot(index, len(classes), dtype=tf.float32)

    dataset = tf.data.Dataset.from_tensor_slices((paths, indices))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(max(len(paths), 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


#: Numeric columns of :func:`image_statistics` used as classifier features.
NUMERIC_STATISTICS = (
    "width",
    "height",
    "aspect_ratio",
    "mean_intensity",
    "std_intensity",
    "border_intensity",
)
#: Categorical columns, one-hot encoded by :func:`statistics_features`.
CATEGORICAL_STATISTICS = ("file_format", "pixel_mode")


def image_statistics(path: str | Path, border_fraction: float = 0.05) -> dict[str, object]:
    """Disease-free statistics of one image file.

    ``width``, ``height`` and ``aspect_ratio`` (width / height) of the stored file, its
    ``file_format`` (JPEG, PNG) and ``pixel_mode`` (L, RGB, RGBA, I;16), and on the grey-level
    image scaled to [0, 1]: ``mean_intensity``, ``std_intensity`` and ``border_intensity``, the
    mean of the outer strip ``border_fraction`` of the width/height wide (dark borders, black
    padding, white page margins of paper figures).
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            file_format, pixel_mode = image.format, image.mode
            width, height = image.size
            grey = np.asarray(image.convert("F"), dtype=np.float32)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"cannot read image {path}: {error}. Check the file exists and is a PNG or JPEG."
        ) from error
    top = max(1, round(border_fraction * height))
    side = max(1, round(border_fraction * width))
    scale = 65535.0 if grey.max() > 255 else 255.0
    grey = grey / scale
    strip = np.ones_like(grey, dtype=bool)
    strip[top:-top, side:-side] = False
    return {
        "width": width,
        "height": height,
        "aspect_ratio": width / height,
        "file_format": file_format,
        "pixel_mode": pixel_mode,
        "mean_intensity": float(grey.mean()),
        "std_intensity": float(grey.std()),
        "border_intensity": float(grey[strip].mean()),
    }


def image_statistics_table(manifest: pd.DataFrame, border_fraction: float = 0.05) -> pd.DataFrame:
    """:func:`image_statistics` of every image of a manifest, beside its label and patient."""
    rows = [image_statistics(path, border_fraction) for path in manifest["path"]]
    stats = pd.DataFrame(rows, index=manifest.index)
    return pd.concat([manifest[["label", "patient_id", "source"]], stats], axis=1)
