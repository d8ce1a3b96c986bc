"""Safe image opening: every failure is a typed :class:`ImageLoadError`.

Decoding happens here, eagerly and completely, so a bad file fails with a clear message
at the place that opened it, never deep inside a DataLoader worker.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Union

from PIL import Image, ImageOps, UnidentifiedImageError
import numpy as np

DEFAULT_MAX_PIXELS = 40_000_000  # ~ 6300 x 6300; far beyond any tweet image
DEFAULT_MAX_BYTES = 20 * 1024 * 1024

ImageInput = Union[str, Path, bytes, bytearray, Image.Image, np.ndarray]


class ImageLoadError(ValueError):
    """Base class: the input could not be turned into an RGB image. ``reason`` is a short code."""

    reason = "unreadable"


class MissingImageError(ImageLoadError, FileNotFoundError):
    reason = "missing"


class NotAnImageError(ImageLoadError):
    reason = "not_an_image"


class CorruptImageError(ImageLoadError):
    reason = "corrupt"


class ImageTooLargeError(ImageLoadError):
    reason = "too_large"


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB view of any mode: alpha is composited on white, CMYK/palette/greyscale converted."""
    if getattr(img, "is_animated", False):
        img.seek(0)  # animated GIF/PNG/WebP: the first frame
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(scaled.astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def _from_array(arr: np.ndarray) -> Image.Image:
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise NotAnImageError(f"array of shape {arr.shape} is not an image (H x W [x 1|3|4])")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return Image.fromarray(arr)


def open_image(source: ImageInput, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_bytes: int = DEFAULT_MAX_BYTES) -> Image.Image:
    """Open a path, raw bytes, PIL image or array as a fully decoded RGB image.

    EXIF orientation is applied. Raises a subclass of :class:`ImageLoadError`:
    missing file, non-image bytes, truncated/corrupt data, or more than ``max_pixels``
    pixels / ``max_bytes`` bytes (checked before decoding, so a decompression bomb never
    allocates its full size).
    """
    if isinstance(source, np.ndarray):
        img = _from_array(source)
    elif isinstance(source, Image.Image):
        img = source
    elif isinstance(source, (str, Path)):
        path = Path(source)
        try:
            if not path.is_file():
                raise MissingImageError(f"image file not found: {path}")
            size = path.stat().st_size
            if size > max_bytes:
                raise ImageTooLargeError(f"{path} is {size} bytes, over the {max_bytes}-byte limit")
            data = path.read_bytes()
        except ImageLoadError:
            raise
        except (OSError, ValueError) as exc:  # name too long, NUL byte, no permission, ...
            raise ImageLoadError(f"cannot read image file {str(path)[:200]!r}: {getattr(exc, 'strerror', None) or exc}") from exc
        return open_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
    elif isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise NotAnImageError("empty file (0 bytes)")
        if len(source) > max_bytes:
            raise ImageTooLargeError(f"{len(source)} bytes, over the {max_bytes}-byte limit")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(bytes(source)))
        except UnidentifiedImageError as exc:
            raise NotAnImageError(f"not a recognised image format: {bytes(source[:16])!r}") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageTooLargeError(f"image too large to decode safely: {exc}") from exc
        except Exception as exc:  # Pillow raises many types for malformed headers
            raise CorruptImageError(f"cannot read image header: {exc}") from exc
    else:
        raise TypeError(
            f"image must be a path, bytes, PIL image or numpy array, not {type(source).__name__}"
        )

    width, height = img.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels, over the {max_pixels} limit"
        )
    if width == 0 or height == 0:
        raise CorruptImageError(f"image has an empty size {width}x{height}")
    try:
        img.load()
        img = ImageOps.exif_transpose(img) or img
        return to_rgb(img)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # "image file is truncated", "broken data stream", bad Huffman tables, ...
        raise CorruptImageError(f"image data is truncated or corrupt: {exc}") from exc


def square_crop(img: Image.Image, size: int) -> Image.Image:
    """Shorter side scaled to ``size``, then the central ``size`` x ``size`` square: what every
    image model here sees (backbone features, DenseNet pixels) and what explanations grid over."""
    from torchvision.transforms import functional as F

    return F.center_crop(F.resize(img, size), [size, size])
