import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mmsent.data.images import (CorruptImageError, ImageLoadError, ImageTooLargeError, MissingImageError, NotAnImageError,
                                open_image)


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size (a decompression bomb never gets decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def test_cmyk_becomes_rgb():
    img = open_image(_bytes(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"))
    assert img.mode == "RGB"
    r, g, b = img.getpixel((4, 4))
    assert r > 200 and g < 60 and b < 60  # CMYK (0,255,255,0) is red


def test_alpha_is_composited_on_white_and_palette_converted():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    assert open_image(_bytes(rgba, "PNG")).getpixel((0, 0)) == (255, 255, 255)
    pal = Image.new("P", (4, 4), 3)
    pal.putpalette([0, 0, 0] * 3 + [10, 200, 30] + [0, 0, 0] * 252)
    assert open_image(_bytes(pal, "PNG")).getpixel((1, 1)) == (10, 200, 30)


def test_greyscale_and_16_bit():
    assert open_image(_bytes(Image.new("L", (5, 5), 77), "PNG")).getpixel((0, 0)) == (77, 77, 77)
    arr = np.arange(16, dtype=np.uint16).reshape(4, 4) * 1000
    img = open_image(_bytes(Image.fromarray(arr), "PNG"))
    assert img.mode == "RGB" and img.getpixel((3, 3))[0] == 255


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (6, 6), c) for c in ((250, 0, 0), (0, 0, 250))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    r, g, b = open_image(buf.getvalue()).getpixel((2, 2))
    assert r > 200 and b < 50


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (20, 10), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    out = open_image(_bytes(img, "JPEG", exif=exif.tobytes()))
    assert out.size == (10, 20)


def test_truncated_jpeg_is_corrupt(tmp_path):
    data = _bytes(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptImageError, match="truncated or corrupt"):
        open_image(path)


@pytest.mark.parametrize("payload", [b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
                                     b"<html><body>hi</body></html>", b"\x00" * 100])
def test_non_image_bytes(payload):
    with pytest.raises(NotAnImageError, match="not a recognised image"):
        open_image(payload)


def test_zero_bytes_and_missing_file(tmp_path):
    with pytest.raises(NotAnImageError, match="empty file"):
        open_image(b"")
    with pytest.raises(MissingImageError, match="not found") as info:
        open_image(tmp_path / "nope.jpg")
    assert isinstance(info.value, FileNotFoundError) and info.value.reason == "missing"


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(ImageTooLargeError, match="too large to decode safely.*400000000 pixels"):
        open_image(_png_header_claiming(20000, 20000))


def test_pixel_and_byte_limits():
    data = _bytes(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageTooLargeError, match="pixels"):
        open_image(data, max_pixels=5000)
    with pytest.raises(ImageTooLargeError, match="byte limit"):
        open_image(data, max_bytes=10)


def test_arrays_and_wrong_types():
    assert open_image(np.zeros((4, 5, 3), np.uint8)).size == (5, 4)
    assert open_image(np.ones((4, 4), np.float32)).getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(NotAnImageError, match="shape"):
        open_image(np.zeros((2, 2, 7)))
    with pytest.raises(TypeError, match="path, bytes, PIL image or numpy array"):
        open_image(12345)


def test_every_error_is_an_image_load_error():
    for cls in (MissingImageError, NotAnImageError, CorruptImageError, ImageTooLargeError):
        assert issubclass(cls, ImageLoadError)


@pytest.mark.parametrize("name", ["x" * 5000 + ".jpg", "bad\x00name.jpg"])
def test_unusable_file_names_give_a_clear_error(tmp_path, name):
    """Found by the API fuzz test: a 5000-character name or a NUL byte is an input error."""
    with pytest.raises(ImageLoadError, match="cannot read image file|not found"):
        open_image(tmp_path / name)
