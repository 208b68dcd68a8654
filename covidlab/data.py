"""Manifests, the image loader, patient-aware splits and synthetic chest X-rays.

A *manifest* is a pandas DataFrame with one row per image and (at least) the columns in
``MANIFEST_COLUMNS``: ``path`` (absolute file path), ``label`` (a class name such as
``"covid"``), ``patient_id`` and ``source``. Every other module takes a manifest, so a
dataset built by hand, by a paper's recipe or by ``synthetic_manifest`` flows through the
same code.

TensorFlow is imported only inside ``make_dataset``: reading manifests, splitting and
plotting images stay quick to import.
"""

from __future__ import annotations

import os
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

if TYPE_CHECKING:
    import tensorflow as tf

MANIFEST_COLUMNS = ("path", "label", "patient_id", "source")

CLASS_NAMES_DISPLAY = {
    "covid": "COVID-19",
    "normal": "Normal",
    "bacterial": "Bacterial pneumonia",
    "viral": "Viral pneumonia",
    "pneumonia": "Pneumonia",
    "other": "Other (not COVID-19)",
    "infection": "Other infection",
}

RESIZE_MODES = ("stretch", "pad")

#: The largest image (width x height) the loaders accept: about four times the largest
#: radiograph in the sources (9.5 megapixels). Decoding costs memory in proportion to the
#: pixel count, not the file size: a 190 KB PNG of 14000 x 14000 pixels would take 4 GiB in a
#: ``tf.data`` pipeline. Larger files are refused with an :class:`ImageDecodeError`.
MAX_IMAGE_PIXELS = 40_000_000

#: Permissions of the files the course writes (manifests, tables, checksums): readable by
#: everyone, as ``open()`` would create them, not owner-only like ``tempfile.mkstemp``.
FILE_MODE = 0o644

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


class PatientLeakError(ValueError):
    """The same patient appears on both sides of a split.

    ``shared_ids`` holds the patient ids found in both sets.
    """

    def __init__(self, shared_ids: Sequence[str]) -> None:
        self.shared_ids = sorted(shared_ids)
        shown = ", ".join(self.shared_ids[:10])
        more = f" and {len(self.shared_ids) - 10} more" if len(self.shared_ids) > 10 else ""
        super().__init__(
            f"{len(self.shared_ids)} patient(s) appear in both sets: {shown}{more}. "
            "Split by patient, e.g. holdout_split(..., group='patient_id')."
        )


# --------------------------------------------------------------------------------------
# Manifests
# --------------------------------------------------------------------------------------


def validate_manifest(df: pd.DataFrame, *, check_files: bool = False) -> pd.DataFrame:
    """Check that ``df`` is a manifest and return it with the required columns as strings.

    Parameters
    ----------
    df : DataFrame
        One row per image with the columns in ``MANIFEST_COLUMNS``.
    check_files : bool
        Also check that every ``path`` exists (slower on large manifests).

    Raises
    ------
    ValueError
        Naming the missing columns, the rows with empty required values, or the missing files.
    """
    missing = [column for column in MANIFEST_COLUMNS if column not in df.columns]
    if missing:
        raise ValueError(
            f"The manifest lacks the column(s) {missing}; a manifest needs "
            f"{list(MANIFEST_COLUMNS)} (it has {list(df.columns)}). "
            "Rename or add them, e.g. df.rename(columns=...)."
        )
    for column in MANIFEST_COLUMNS:
        empty = df.index[df[column].isna() | (df[column].astype(str).str.strip() == "")]
        if len(empty):
            raise ValueError(
                f"The manifest column {column!r} is empty in {len(empty)} row(s) "
                f"(index {list(empty[:5])}{' ...' if len(empty) > 5 else ''}). "
                "Fill those values or drop the rows."
            )
    df = df.astype({column: str for column in MANIFEST_COLUMNS})
    if check_files:
        absent = [path for path in df["path"] if not os.path.isfile(path)]
        if absent:
            raise ValueError(
                f"{len(absent)} image file(s) listed in the manifest do not exist, e.g. "
                f"{absent[:3]}. Fix the paths or drop those rows: "
                "df = df[df['path'].map(os.path.isfile)]."
            )
    return df


def read_manifest(csv_path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest CSV; relative paths are taken relative to the CSV's folder.

    Raises ``ValueError`` (see ``validate_manifest``) when a required column is missing.
    """
    csv_path = Path(csv_path)
    folder = Path(os.path.abspath(csv_path)).parent
    df = pd.read_csv(csv_path, dtype={column: str for column in MANIFEST_COLUMNS})
    try:
        df = validate_manifest(df)
    except ValueError as error:
        raise ValueError(f"{csv_path}: {error}") from None
    df["path"] = [
        path if os.path.isabs(path) else os.path.normpath(folder / path) for path in df["path"]
    ]
    return df


def write_manifest(df: pd.DataFrame, csv_path: str | os.PathLike) -> Path:
    """Write a manifest CSV atomically (a temporary file in the same folder, then a rename).

    Paths inside the CSV's folder are stored relative to it, so the folder can be moved or
    zipped as a whole. A failure leaves any previous file untouched. Returns the CSV path.
    """
    df = validate_manifest(df)
    csv_path = Path(csv_path)
    folder = Path(os.path.abspath(csv_path)).parent
    folder.mkdir(parents=True, exist_ok=True)

    def stored(path: str) -> str:
        absolute = Path(os.path.abspath(path))
        if absolute.is_relative_to(folder):
            return absolute.relative_to(folder).as_posix()
        return path

    df = df.assign(path=[stored(path) for path in df["path"]])
    return write_file_atomically(csv_path, lambda handle: df.to_csv(handle, index=False))


def write_file_atomically(path: str | os.PathLike, write: Callable[[TextIO], object]) -> Path:
    """Write a text file by calling ``write(handle)``, atomically, readable by everyone.

    The text goes to a temporary file in the same folder, which is renamed over ``path``
    only when ``write`` returned, so a reader never sees half a file and a failure leaves any
    previous file untouched. The file gets :data:`FILE_MODE` (``tempfile.mkstemp`` alone
    would leave it owner-only). Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as temp_file:
            write(temp_file)
        os.chmod(temp_name, FILE_MODE)
        os.replace(temp_name, path)
    except BaseException:
        os.unlink(temp_name)
        raise
    return path


def class_counts(manifest: pd.DataFrame) -> pd.Series:
    """Number of images per label, sorted by label name."""
    return manifest["label"].value_counts().sort_index()


def merge_labels(manifest: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    """Return a copy with labels renamed by ``mapping``; labels not in it are kept.

    Example: ``merge_labels(df, {"bacterial": "pneumonia", "viral": "pneumonia"})`` gives the
    three classes of Apostolopoulos & Mpesiana (2020).
    """
    return manifest.assign(label=manifest["label"].map(lambda label: mapping.get(label, label)))


def labels_to_indices(labels: Iterable[str], classes: Sequence[str]) -> np.ndarray:
    """Class index of each label in ``classes`` order.

    Raises
    ------
    ValueError
        Naming the labels that are not in ``classes``.
    """
    position = {name: index for index, name in enumerate(classes)}
    labels = list(labels)
    unknown = sorted({label for label in labels if label not in position})
    if unknown:
        raise ValueError(
            f"Label(s) {unknown} are not among the classes {list(classes)}. "
            "Add them to `classes`, merge them with merge_labels(), or drop those rows."
        )
    return np.array([position[label] for label in labels], dtype=np.int64)


# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------


def _size_pair(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = image_size
    return int(height), int(width)


def _check_resize(resize: str) -> None:
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, not {resize!r}.")


def _padded_layout(height: int, width: int, target: tuple[int, int]) -> tuple[int, int, int, int]:
    """(resized height, resized width, top, left), computed as tf.image.resize_with_pad does."""
    f = np.float32
    ratio = max(f(width) / f(target[1]), f(height) / f(target[0]))
    resized_h, resized_w = f(height) / ratio, f(width) / ratio
    top = max(0, int(np.floor((f(target[0]) - resized_h) / f(2))))
    left = max(0, int(np.floor((f(target[1]) - resized_w) / f(2))))
    return int(np.floor(resized_h)), int(np.floor(resized_w)), top, left


def _resize_channels(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a float HxWxC array, channel by channel, without rounding."""
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(pixels[..., c])).resize(
                (width, height), Image.Resampling.BILINEAR
            )
        )
        for c in range(pixels.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def _pixels_0_255(image: Image.Image) -> np.ndarray:
    """Float32 HxWx3 array in [0, 255] from any Pillow image; alpha is dropped."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        # 16-bit grayscale PNG: 65535 / 257 = 255, the same scaling as make_dataset.
        gray = np.asarray(image, dtype=np.float32) / 257.0
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("L", "LA"):
        gray = np.asarray(image.convert("L"), dtype=np.float32)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def load_image(
    path: str | os.PathLike,
    image_size: int | Sequence[int],
    resize: str = "stretch",
) -> np.ndarray:
    """Load one image as a float32 ``(height, width, 3)`` array in [0, 255] (with Pillow).

    Meant for plots and Grad-CAM; it follows ``make_dataset`` (same channel handling, same
    16-bit scaling, same padding layout), give or take interpolation round-off.

    Parameters
    ----------
    path : str or Path
        A PNG (8- or 16-bit; grayscale, grayscale+alpha, RGB, RGBA, palette) or JPEG file.
    image_size : int or (height, width)
        Output size.
    resize : {"stretch", "pad"}
        ``"stretch"`` ignores the aspect ratio; ``"pad"`` keeps it and fills the rest with
        black, centred, like ``tf.image.resize_with_pad``.

    Raises
    ------
    ImageDecodeError
        When the file is missing, empty, corrupt or larger than :data:`MAX_IMAGE_PIXELS`.
    """
    _check_resize(resize)
    height, width = _size_pair(image_size)
    with _open_image(path) as image:
        try:
            image.load()
            pixels = _pixels_0_255(image)
        except Exception as error:  # Pillow raises many types for damaged files
            raise ImageDecodeError(path, f"not a readable image ({error})") from error

    if resize == "stretch":
        return _resize_channels(pixels, height, width)
    resized_h, resized_w, top, left = _padded_layout(*pixels.shape[:2], (height, width))
    canvas = np.zeros((height, width, 3), dtype=np.float32)
    canvas[top : top + resized_h, left : left + resized_w] = _resize_channels(
        pixels, resized_h, resized_w
    )
    return canvas


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
        "(covidlab.data.MAX_IMAGE_PIXELS); shrink the image or raise that limit"
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
    height, width = _size_pair(image_size)
    manifest = validate_manifest(manifest)
    if manifest.empty:
        raise ValueError("The manifest has no rows; there is nothing to load.")
    indices = labels_to_indices(manifest["label"], classes)
    paths = manifest["path"].tolist()
    for path in paths:
        _check_image_file(path)

    import tensorflow as tf

    def load(path: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = _decode_to_rgb(tf.io.read_file(path))
        if resize == "stretch":
            image = tf.image.resize(image, (height, width), antialias=True)
        else:
            image = tf.image.resize_with_pad(image, height, width, antialias=True)
        image = tf.clip_by_value(image, 0.0, 255.0)
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


# --------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------


def assert_patient_disjoint(
    a: pd.DataFrame, b: pd.DataFrame, *, column: str = "patient_id"
) -> None:
    """Raise ``PatientLeakError`` (listing the ids) if a patient is in both ``a`` and ``b``."""
    shared = set(a[column].astype(str)) & set(b[column].astype(str))
    if shared:
        raise PatientLeakError(sorted(shared))


def holdout_split(
    manifest: pd.DataFrame,
    test_fraction: float,
    *,
    seed: int,
    group: str | None = "patient_id",
    stratify: str | None = "label",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a manifest into train and test sets, keeping each patient on one side.

    The patients (not the images) are split with scikit-learn's ``train_test_split``,
    stratified by each patient's most frequent label, so about ``test_fraction`` of the
    patients of every class go to the test set. ``group=None`` splits images instead: then
    one patient's images can land on both sides, the leak that inflated many early COVID-19
    results (Roberts et al. 2021).

    Returns
    -------
    (train, test) : DataFrames with a fresh index, rows in manifest order.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, not {test_fraction}.")
    manifest = validate_manifest(manifest)
    if group is None:
        strata = manifest[stratify] if stratify else None
        _, test_rows = train_test_split(
            np.arange(len(manifest)), test_size=test_fraction, random_state=seed, stratify=strata
        )
        is_test = np.isin(np.arange(len(manifest)), test_rows)
    else:
        if stratify:
            per_group = manifest.groupby(group)[stratify].agg(lambda s: s.mode().iloc[0])
        else:
            per_group = manifest.groupby(group).size()
        _, test_groups = train_test_split(
            per_group.index.to_numpy(),
            test_size=test_fraction,
            random_state=seed,
            stratify=per_group.to_numpy() if stratify else None,
        )
        is_test = manifest[group].isin(test_groups).to_numpy()
    train = manifest[~is_test].reset_index(drop=True)
    test = manifest[is_test].reset_index(drop=True)
    if group is not None:
        assert_patient_disjoint(train, test, column=group)
    return train, test


def kfold_splits(
    manifest: pd.DataFrame,
    n_splits: int,
    *,
    seed: int,
    group: str | None = "patient_id",
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """``n_splits`` (train, test) pairs; every image is in exactly one test fold.

    Uses scikit-learn's ``StratifiedGroupKFold`` (labels balanced across folds, each patient
    in one fold); ``group=None`` uses ``StratifiedKFold`` on images, which lets a patient's
    images sit in train and test at once.
    """
    manifest = validate_manifest(manifest)
    placeholder = np.zeros(len(manifest))
    if group is None:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        folds = splitter.split(placeholder, manifest["label"])
    else:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        folds = splitter.split(placeholder, manifest["label"], groups=manifest[group])
    splits = []
    for train_rows, test_rows in folds:
        train = manifest.iloc[train_rows].reset_index(drop=True)
        test = manifest.iloc[test_rows].reset_index(drop=True)
        if group is not None:
            assert_patient_disjoint(train, test, column=group)
        splits.append((train, test))
    return splits


# --------------------------------------------------------------------------------------
# Synthetic chest X-rays
# --------------------------------------------------------------------------------------

# Merged classes draw each patient's pattern from their parts.
_MIXTURES = {
    "pneumonia": ("bacterial", "viral"),
    "infection": ("bacterial", "viral"),
    "other": ("normal", "bacterial", "viral"),
}
_LUNG_CENTRES_X = (0.31, 0.69)  # image left and right lung, as fractions of the width


def _stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every Python process (unlike ``hash``)."""
    return zlib.crc32(text.encode("utf-8"))


def _ellipse(y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float):
    """Soft-edged ellipse mask in [0, 1]."""
    r = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2
    return 1.0 / (1.0 + np.exp(np.clip((r - 1.0) * 10.0, -50, 50)))


def _blob(y: np.ndarray, x: np.ndarray, cy: float, cx: float, sy: float, sx: float):
    return np.exp(-0.5 * (((y - cy) / sy) ** 2 + ((x - cx) / sx) ** 2))


def _opacity(pattern: str, y: np.ndarray, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Extra brightness (grey levels) that a class adds inside the lungs."""
    if pattern == "normal":
        return np.zeros_like(y)
    if pattern == "covid":  # bilateral, peripheral, lower-zone patches
        field = np.zeros_like(y)
        for side, centre in zip((-1, 1), _LUNG_CENTRES_X, strict=True):
            for _ in range(3):
                cx = centre + side * rng.uniform(0.04, 0.09)
                cy = rng.uniform(0.45, 0.72)
                field += _blob(y, x, cy, cx, rng.uniform(0.05, 0.07), rng.uniform(0.035, 0.05))
        return 100.0 * np.minimum(field, 1.0)
    if pattern == "bacterial":  # one dense lobar consolidation
        cx = _LUNG_CENTRES_X[rng.integers(2)] + rng.uniform(-0.03, 0.03)
        return 120.0 * np.minimum(1.3 * _blob(y, x, rng.uniform(0.45, 0.6), cx, 0.13, 0.09), 1.0)
    if pattern == "viral":  # diffuse fine interstitial texture
        speckle = rng.random(y.shape) > 0.55
        return 35.0 + 40.0 * speckle
    # Any other class name: stripes and spots fixed by the name, so each gets its own look.
    own = np.random.default_rng(_stable_hash(pattern))
    angle, frequency = own.uniform(0, np.pi), own.uniform(6, 14)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)))
    spots = sum(
        _blob(y, x, own.uniform(0.35, 0.75), own.choice(_LUNG_CENTRES_X), 0.05, 0.05)
        for _ in range(2)
    )
    return 35.0 * stripes + 60.0 * np.minimum(spots, 1.0) + rng.normal(0, 3, y.shape)


def _chest_xray(
    pattern: str,
    image_size: tuple[int, int],
    patient_rng: np.random.Generator,
    image_rng: np.random.Generator,
) -> np.ndarray:
    """One synthetic frontal 'radiograph' as a uint8 array (dark air, bright bone)."""
    height, width = image_size
    # The patient fixes body shape and position; each image adds a small shift and noise.
    shift_x = patient_rng.uniform(-0.03, 0.03) + image_rng.uniform(-0.01, 0.01)
    shift_y = patient_rng.uniform(-0.03, 0.03) + image_rng.uniform(-0.01, 0.01)
    scale = patient_rng.uniform(0.92, 1.08)
    exposure = patient_rng.uniform(-8, 8) + image_rng.uniform(-3, 3)
    y = ((np.arange(height) + 0.5) / height - 0.5 - shift_y)[:, None] / scale + 0.5
    x = ((np.arange(width) + 0.5) / width - 0.5 - shift_x)[None, :] / scale + 0.5
    y, x = np.broadcast_arrays(y, x)

    image = np.full((height, width), 12.0)
    body = _ellipse(y, x, 0.62, 0.5, 0.55, 0.46)
    image += (105.0 - image) * body
    lungs = sum(_ellipse(y, x, 0.48, cx, 0.28, 0.13) for cx in _LUNG_CENTRES_X)
    image += (45.0 - image) * lungs
    image += lungs * _opacity(pattern, y, x, patient_rng)
    spine = _ellipse(y, x, 0.6, 0.5, 0.55, 0.055)
    heart = _ellipse(y, x, 0.68, 0.56, 0.11, 0.12)
    for part, level in ((spine, 170.0), (heart, 150.0)):
        image += (level - image) * part
    image += exposure + image_rng.normal(0.0, 5.0, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def synthetic_manifest(
    out_dir: str | os.PathLike,
    classes: Sequence[str],
    n_per_class: int,
    *,
    image_size: int | Sequence[int] = (64, 64),
    seed: int = 0,
    patients_per_class: int | None = None,
) -> pd.DataFrame:
    """Write synthetic, chest-X-ray-like grayscale PNGs and return their manifest.

    **These images are synthetic and carry no medical meaning.** They let every chapter run
    in seconds without downloads: a dark background, a body, two dark lungs, a bright spine
    and heart, plus a class pattern in the lungs that a small CNN picks up in a few epochs:
    ``covid`` bilateral peripheral patches, ``bacterial`` one dense blob, ``viral`` a diffuse
    fine texture, ``normal`` clear lungs. ``pneumonia``/``infection`` mix bacterial and
    viral patients, ``other`` mixes normal, bacterial and viral; any other name gets its own
    pattern derived from the name.

    Parameters
    ----------
    out_dir : str or Path
        Folder for ``<class>/<class>-NNN.png`` and ``manifest.csv`` (created if needed).
    classes : sequence of str
        Class names.
    n_per_class : int
        Images per class.
    image_size : int or (height, width)
        Size of the PNGs.
    seed : int
        Same seed, same bytes.
    patients_per_class : int, optional
        Number of patients per class; fewer than ``n_per_class`` gives several (near
        identical) images per patient, which makes leakage through image-level splits
        visible. Default: one image per patient.
    """
    if patients_per_class is None:
        patients_per_class = n_per_class
    if not 1 <= patients_per_class <= n_per_class:
        raise ValueError(
            f"patients_per_class must be between 1 and n_per_class={n_per_class}, "
            f"not {patients_per_class}."
        )
    out_dir = Path(out_dir)
    size = _size_pair(image_size)
    rows = []
    for label in classes:
        (out_dir / label).mkdir(parents=True, exist_ok=True)
        label_key = _stable_hash(label)
        for image_index in range(n_per_class):
            patient = image_index % patients_per_class
            patient_rng = np.random.default_rng([seed, label_key, patient])
            image_rng = np.random.default_rng([seed, label_key, patient, image_index])
            parts = _MIXTURES.get(label, (label,))
            pattern = parts[patient_rng.integers(len(parts))]
            pixels = _chest_xray(pattern, size, patient_rng, image_rng)
            path = out_dir / label / f"{label}-{image_index:03d}.png"
            Image.fromarray(pixels).save(path)
            rows.append(
                {
                    "path": os.path.abspath(path),
                    "label": label,
                    "patient_id": f"synthetic-{label}-{patient:03d}",
                    "source": "synthetic",
                }
            )
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    write_manifest(manifest, out_dir / "manifest.csv")
    return manifest
