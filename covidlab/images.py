"""Images: the loaders (one decode and resize for training, plots and Grad-CAM) and
statistics of image files that carry no disease.

:func:`make_dataset` turns a manifest into a ``tf.data`` pipeline over images decoded and
resized once by :func:`decoded_images`, which keeps them on disk for every later fold,
backbone and run; :func:`load_image` loads one image with the same TensorFlow decode and
resize, so what a figure shows is what the model saw. :func:`check_image` finds files the
loaders would fail on. The statistics
(:func:`image_statistics_table`: size, format and intensity) let chapters look for what else
than the disease tells images apart (a source's file format, black padding, page margins).

TensorFlow is imported inside the loaders only: reading statistics stays quick to import.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image

from covidlab.data import labels_to_indices, validate_manifest, write_file_atomically

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
    """Load one image as a float32 ``(height, width, 3)`` array of whole numbers in [0, 255].

    Decoded, resized and rounded by the same TensorFlow code as :func:`make_dataset`, so a
    plot or a Grad-CAM map shows exactly the pixels the model was tested on.

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
    plan = _plan(path, height, width, resize)
    import tensorflow as tf

    try:
        with tf.device("/CPU:0"):  # as in decoded_images
            image = _loader((plan,), height, width, resize)(tf.constant([path]), 0)[0]
    except tf.errors.OpError as error:
        raise ImageDecodeError(path, f"not a readable image ({error.message})") from error
    return image.numpy().astype(np.float32)


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


@dataclass(frozen=True)
class DecodePlan:
    """How one file is decoded, read from its header: a few plans cover every file, and one
    TensorFlow graph per set of plans and output size decodes them (:func:`_loader`).

    ``kind``: ``"png"`` (8-bit), ``"png16"``, ``"jpeg"`` or ``"other"`` (GIF, BMP); ``ratio``:
    the JPEG scale 1, 2, 4 or 8; ``channels``: 1 for a gray file (alpha dropped), else 3.
    """

    kind: str
    ratio: int = 1
    channels: int = 3


#: libjpeg decodes a JPEG at 1/1, 1/2, 1/4 or 1/8 of its size by scaling its 8x8 blocks.
_JPEG_RATIOS = (1, 2, 4, 8)
#: PNG colour types (IHDR byte 25) without colour: gray, and gray with alpha.
_PNG_GRAY_TYPES = (0, 4)


def _plan(path: str, height: int, width: int, resize: str) -> DecodePlan:
    """The :class:`DecodePlan` of ``path``, from its header, or :class:`ImageDecodeError`.

    Refuses files that do not start like a PNG, JPEG, GIF or BMP, and images larger than
    :data:`MAX_IMAGE_PIXELS`, before any pixel is decoded. An 8-bit PNG is decoded as 8 bits
    (half the work of 16), a gray file as one channel (a third of the resize work), and a JPEG
    at the smallest scale that still has at least as many pixels as the resized image needs
    (Pillow's ``draft`` makes the same choice): a 2,000-pixel radiograph resized to 224 is
    decoded at 1/8 of its size, leaving a 64th of the pixels to resize; its Huffman decoding,
    most of the cost, remains.
    """
    try:
        with open(path, "rb") as handle:
            header = handle.read(26)
    except FileNotFoundError:
        raise ImageDecodeError(path, "file not found") from None
    if not header:
        raise ImageDecodeError(path, "the file is empty (0 bytes)")
    if not any(header.startswith(magic) for magic in _MAGIC_BYTES):
        raise ImageDecodeError(path, f"not a PNG or JPEG file (it starts with {header[:8]!r})")
    if header.startswith(_PNG_SIGNATURE) and header[12:16] == b"IHDR" and len(header) == 26:
        # IHDR, the first chunk: width, height, bit depth (byte 24), colour type (byte 25)
        file_width, file_height = struct.unpack(">II", header[16:24])
        if file_width * file_height > MAX_IMAGE_PIXELS:
            _open_image(path).close()  # raises, saying why
        channels = 1 if header[25] in _PNG_GRAY_TYPES else 3
        return DecodePlan("png16" if header[24] == 16 else "png", channels=channels)
    with _open_image(path) as image:
        (file_width, file_height), mode = image.size, image.mode
    if not header.startswith(b"\xff\xd8\xff"):
        return DecodePlan("other")
    scale_x, scale_y = width / file_width, height / file_height
    if resize == "pad":  # the image fills the box in one direction only
        scale_x = scale_y = min(scale_x, scale_y)
    ratio = max(  # 1 when the image is enlarged
        (
            r
            for r in _JPEG_RATIOS
            if -(-file_width // r) >= scale_x * file_width
            and -(-file_height // r) >= scale_y * file_height
        ),
        default=1,
    )
    return DecodePlan("jpeg", ratio, 1 if mode == "L" else 3)


def _decode_and_resize(
    contents: tf.Tensor, plan: DecodePlan, height: int, width: int, resize: str
) -> tf.Tensor:
    """Decode image bytes by ``plan`` and resize them: a uint8 ``(height, width, 3)`` tensor.

    16-bit PNGs keep their precision until after the resize: decoded at 16 bits each 8-bit
    value is repeated in both bytes (v * 257), so one division by 257 gives [0, 255]. Gray
    images are resized as one channel and repeated into three afterwards (the same pixels, a
    third of the work). Shrinking averages each output pixel's whole footprint in the input
    (``method="area"``: no aliasing, and a third of the cost of ``antialias=True``'s triangle
    filter); enlarging is bilinear. The result is rounded to whole grey levels, the form in
    which :func:`decoded_images` keeps images on disk.
    """
    import tensorflow as tf

    channels = plan.channels
    if plan.kind == "png":
        image = tf.cast(tf.io.decode_png(contents, channels=channels), tf.float32)
    elif plan.kind == "png16":
        image = tf.io.decode_png(contents, channels=channels, dtype=tf.uint16)
        image = tf.cast(image, tf.float32) / 257.0
    elif plan.kind == "jpeg":
        image = tf.io.decode_jpeg(contents, channels=channels, ratio=plan.ratio)
        image = tf.cast(image, tf.float32)
    else:
        image = tf.io.decode_image(contents, channels=channels, expand_animations=False)
        image = tf.cast(image, tf.float32)
    image = tf.ensure_shape(image, [None, None, channels])
    size = tf.shape(image)[:2]
    if resize == "stretch":
        image = _resized(image, size, tf.constant([height, width]))
    else:  # tf.image.resize_with_pad, with the scaled size rounded rather than cut down in
        # float32 (which made 60 * (30 / 30) come out 59 inside a graph)
        shape = tf.cast(size, tf.float64)
        scale = tf.minimum(height / shape[0], width / shape[1])
        inner = tf.cast(tf.round(shape * scale), tf.int32)
        inner = tf.clip_by_value(inner, 1, tf.constant([height, width]))
        image = _resized(image, size, inner)
        top, left = (height - inner[0]) // 2, (width - inner[1]) // 2
        image = tf.image.pad_to_bounding_box(image, top, left, height, width)
    image = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)
    if channels == 1:
        image = tf.tile(image, [1, 1, 3])
    return tf.ensure_shape(image, [height, width, 3])


def _resized(image: tf.Tensor, size: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """``image`` resized to ``target``: box-averaged when shrinking, bilinear otherwise."""
    import tensorflow as tf

    return tf.cond(
        tf.reduce_all(target <= size),
        lambda: tf.image.resize(image, target, method="area"),
        lambda: tf.image.resize(image, target, method="bilinear", antialias=True),
    )


@functools.lru_cache(maxsize=64)
def _loader(plans: tuple[DecodePlan, ...], height: int, width: int, resize: str):
    """``(paths, plan number) -> (n, height, width, 3) uint8 images``: a TensorFlow graph that
    decodes a vector of files by ``plans[plan number]``, traced once per set of plans, size
    and mode.

    Called from threads, one piece of files of one plan at a time: the plan is chosen once per
    piece. A ``tf.switch_case`` over plans for every image inside a ``tf.data`` map, as this
    module did before, decoded the 40 originals of the pipeline benchmark at 0.6 times the
    speed.
    """
    import tensorflow as tf

    def decode_all(plan, paths):
        return tf.map_fn(
            lambda path: _decode_and_resize(tf.io.read_file(path), plan, height, width, resize),
            paths,
            fn_output_signature=tf.TensorSpec([height, width, 3], tf.uint8),
            parallel_iterations=1,  # the threads of decoded_images decode side by side
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int32)])
    def load(paths, plan_number):
        if len(plans) == 1:
            return decode_all(plans[0], paths)
        branches = [functools.partial(decode_all, plan, paths) for plan in plans]
        return tf.switch_case(plan_number, branches)

    return load


#: Bump when :func:`_decode_and_resize` changes, so images cached by an older version are not
#: reused.
DECODER_VERSION = 2


def decoded_images(
    paths: Sequence[str | os.PathLike],
    image_size: int | Sequence[int],
    resize: str = "stretch",
    *,
    cache: bool | str | os.PathLike = True,
) -> np.ndarray:
    """Every image of ``paths`` decoded and resized once: a uint8 ``(n, height, width, 3)`` array.

    With ``cache`` (the default folder :func:`covidlab.config.decoded_cache_dir`, or a folder
    given here) the resized images are also kept on disk, each keyed by its file (path, device
    and inode, size, modification time: :func:`_cache_key`), the output size, the resize mode
    and :data:`DECODER_VERSION`. Every fold, every backbone and every later run that asks for
    the same image at the same size then reads it instead of decoding it again, whatever subset
    and order it asks for; a changed file gets a new key. The images of one piece (below) are
    kept together, an ``.npy`` array of up to 32 images beside a ``.keys`` file naming them
    (:func:`_write_cached`): a file per image, as this module kept them before, made writing the
    cache cost up to three quarters of the time decoding the shared sample's 240 small PNGs
    took. Files are written atomically (a temporary name, then a rename), so runs sharing the
    folder do not damage each other. Delete the folder at any time to reclaim the space.

    Missing images are decoded by one thread per CPU core, in pieces of images that share a
    :class:`DecodePlan` (:func:`_chunks`), each thread writing its cache files as it goes.

    Raises
    ------
    ImageDecodeError
        When a file is missing, empty, not a PNG/JPEG, or larger than
        :data:`MAX_IMAGE_PIXELS` (from its header), or when its data cannot be decoded.
    """
    _check_resize(resize)
    height, width = size_pair(image_size)
    paths = [os.fspath(path) for path in paths]
    result = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    folder = None
    if cache is not False:
        from covidlab.config import decoded_cache_dir

        folder = decoded_cache_dir() if cache is True else Path(cache)
        folder.mkdir(parents=True, exist_ok=True)
    prefix = f"{height}x{width}-{resize}-"  # the cache files of this size and mode
    if folder is None:
        keys, missing = [], list(range(len(paths)))
    else:
        keys = [_cache_key(path, height, width, resize) for path in paths]
        missing = _read_cached(folder, prefix, keys, result)
    if not missing:
        return result
    plan_of = {index: _plan(paths[index], height, width, resize) for index in missing}
    import tensorflow as tf

    plans = tuple(sorted(set(plan_of.values()), key=repr))
    load = _loader(plans, height, width, resize)

    def decode(plan: DecodePlan, indices: list[int]) -> None:
        files, number = [paths[i] for i in indices], plans.index(plan)
        try:
            with tf.device("/CPU:0"):  # the same pixels on a machine with a GPU
                decoded = load(tf.constant(files), number).numpy()
        except tf.errors.OpError as error:
            _raise_for_the_failed_image(error, load, files, number)
        result[indices] = decoded
        if folder is not None:
            _write_cached(folder, prefix, [keys[i] for i in indices], decoded)

    workers = _worker_count()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(decode, *chunk) for chunk in _chunks(plan_of, paths, workers)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return result


def _worker_count() -> int:
    """The CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _chunks(
    plan_of: dict[int, DecodePlan], paths: Sequence[str], workers: int
) -> list[tuple[DecodePlan, list[int]]]:
    """The images to decode as ``(plan, indices)`` pieces for the threads of
    :func:`decoded_images`, largest files first.

    One call per image costs about half a millisecond of Python and TensorFlow overhead, as
    much as decoding a 256-pixel PNG; pieces of up to 32 images of one plan share that cost,
    and there are at least two pieces per thread, so a thread that drew big files does not
    leave the others idle at the end.
    """
    file_size = {index: os.path.getsize(paths[index]) for index in plan_of}
    by_plan: dict[DecodePlan, list[int]] = {}
    for index, plan in plan_of.items():
        by_plan.setdefault(plan, []).append(index)
    pieces = []
    for plan, indices in by_plan.items():
        indices.sort(key=file_size.get, reverse=True)
        length = min(32, -(-len(indices) // (2 * workers)))
        pieces += [
            (plan, indices[start : start + length]) for start in range(0, len(indices), length)
        ]
    return sorted(pieces, key=lambda piece: file_size[piece[1][0]], reverse=True)


def _raise_for_the_failed_image(error: Exception, load, paths: list[str], plan_number: int) -> None:
    """A piece failed to decode: decode its images one by one and name the one that fails."""
    import tensorflow as tf

    for path in paths:
        try:
            with tf.device("/CPU:0"):
                load(tf.constant([path]), plan_number)
        except tf.errors.OpError as image_error:
            reason = f"not a readable image ({image_error.message.splitlines()[0]})"
            raise ImageDecodeError(path, reason) from error
    raise error


def _cache_key(path: str, height: int, width: int, resize: str) -> str:
    """The name of ``path``'s image at this size and mode in the cache: 32 hex digits.

    The file is named by its absolute path and, through a link too, by the file it reaches
    (device, inode, size, modification time): replacing the file, rewriting it with another
    size or at a later time, or pointing a link elsewhere, gives a new key (a rewrite in place
    to the same size within the file system's clock resolution keeps it). ``os.path.realpath``
    would name a link's target as well but costs 15 microseconds an image, four times the
    rest of the key.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise ImageDecodeError(path, "file not found") from None
    identity = (
        f"{DECODER_VERSION}|{height}x{width}|{resize}|{os.path.abspath(path)}|"
        f"{status.st_dev}|{status.st_ino}|{status.st_size}|{status.st_mtime_ns}"
    )
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def _read_cached(folder: Path, prefix: str, keys: list[str], result: np.ndarray) -> list[int]:
    """Copy the images of ``keys`` found in ``folder`` into ``result``; the indices not found.

    Reads the ``.keys`` files whose names start with ``prefix`` (this size and resize mode),
    then only the rows it needs of their arrays (:func:`_read_rows`). A cached piece is
    trusted only whole: a ``.keys`` file whose lines do not hash to its name (reordered,
    edited), or an array that is missing, damaged or of another shape than its keys say,
    counts as absent, and its images are decoded again.
    """
    wanted: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        wanted.setdefault(key, []).append(index)
    try:
        entries = list(os.scandir(folder))
    except OSError:  # an unreadable folder costs the cache, not the run
        entries = []
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(".keys")):
            continue
        try:
            stored = Path(entry.path).read_text(encoding="ascii").split()
        except (OSError, UnicodeDecodeError):
            continue
        if _piece_name(prefix, stored) != entry.name.removesuffix(".keys"):
            continue
        rows = {key: row for row, key in enumerate(stored) if key in wanted}
        if rows:
            array_file = entry.path.removesuffix(".keys") + ".npy"
            for key, image in _read_rows(array_file, len(stored), rows, result.shape[1:]):
                if key in wanted:
                    result[wanted.pop(key)] = image
    return sorted(index for indices in wanted.values() for index in indices)


def _read_rows(array_file: str, length: int, rows: dict[str, int], shape: tuple[int, ...]):
    """``(key, image)`` for the ``rows`` (key -> row) of a cached ``.npy`` array of ``length``
    uint8 images of ``shape``; nothing when the file is not exactly that.

    The header is checked against the keys file and the file's size, then each row is read
    on its own: no memory map, which a file replaced on a network drive could turn into a
    crash.
    """
    image_bytes = int(np.prod(shape))
    try:
        with open(array_file, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            stored_shape, fortran_order, dtype = read_header(handle)
            offset = handle.tell()
            if (
                stored_shape != (length, *shape)
                or fortran_order
                or dtype != np.uint8
                or os.fstat(handle.fileno()).st_size != offset + length * image_bytes
            ):
                return []
            images = []
            for key, row in rows.items():
                handle.seek(offset + row * image_bytes)
                pixels = np.frombuffer(handle.read(image_bytes), np.uint8)
                images.append((key, pixels.reshape(shape)))  # a short read fails here
    except Exception:  # a damaged header fails in many ways; it costs a decode, not the run
        return []
    return images


def _piece_name(prefix: str, keys: Sequence[str]) -> str:
    """The file name, without suffix, of a cached piece: ``prefix`` and a hash of its keys."""
    return prefix + hashlib.sha256(" ".join(keys).encode()).hexdigest()[:32]


def _write_cached(folder: Path, prefix: str, keys: list[str], images: np.ndarray) -> None:
    """Keep ``images`` in ``folder`` under ``keys``: ``<name>.npy`` (the array), then
    ``<name>.keys`` (the keys, one a line: what :func:`_read_cached` looks for), each written
    atomically, ``<name>`` from :func:`_piece_name`. Two runs writing the same images at once
    write the same files."""
    name = _piece_name(prefix, keys)
    try:
        write_file_atomically(
            folder / f"{name}.npy",
            lambda handle: np.save(handle, images, allow_pickle=False),
            binary=True,
        )
        write_file_atomically(
            folder / f"{name}.keys", lambda handle: handle.write("\n".join(keys) + "\n")
        )
    except OSError:  # a full or read-only disk costs the cache, not the run
        pass


def make_dataset(
    manifest: pd.DataFrame,
    classes: Sequence[str],
    image_size: int | Sequence[int],
    *,
    resize: str = "stretch",
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    cache: bool | str | os.PathLike = True,
    repeat: bool = False,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(images, one_hot_labels)`` batches from a manifest.

    Each file is read, decoded (PNG 8/16-bit or JPEG; gray, gray+alpha, RGB, RGBA), turned
    into 3 channels, resized and rounded, once (:func:`decoded_images`); the images are held
    in memory as uint8 (``n x height x width x 3`` bytes: 150 KB an image at 224 px) and
    served as float32 in [0, 255]. The model applies its own ``preprocess_input``; nothing is
    normalised here.

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
    cache : bool or folder
        Keep the decoded images on disk for later runs (see :func:`decoded_images`); False
        decodes them again every time.
    repeat : bool
        Repeat forever (then pass ``steps_per_epoch`` to ``fit``).

    Raises
    ------
    ValueError
        When a label is not in ``classes`` (naming it).
    ImageDecodeError
        When a file is missing, empty, not a PNG/JPEG, larger than :data:`MAX_IMAGE_PIXELS`
        or damaged (naming it).
    """
    _check_resize(resize)
    manifest = validate_manifest(manifest)
    if manifest.empty:
        raise ValueError("The manifest has no rows; there is nothing to load.")
    indices = labels_to_indices(manifest["label"], classes)
    pixels = decoded_images(manifest["path"].tolist(), image_size, resize, cache=cache)

    import tensorflow as tf

    def to_model_input(images: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.cast(images, tf.float32), tf.one_hot(index, len(classes), dtype=tf.float32)

    dataset = tf.data.Dataset.from_tensor_slices((pixels, indices))
    if shuffle:
        dataset = dataset.shuffle(len(pixels), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size).map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


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
