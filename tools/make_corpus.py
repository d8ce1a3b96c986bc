"""Regenerate tests/corpus/: a checked-in folder of hostile inputs (run: python tools/make_corpus.py)."""

import io
import struct
import zlib
from pathlib import Path

from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "tests" / "corpus"


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 40).convert("RGB").save(buf, "JPEG")
    jpeg = buf.getvalue()
    files = {
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "lying_header.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        "bomb_20000x20000.png": png_claiming(20000, 20000),
        "zero_bytes.jpg": b"",
        "svg_as_image.jpg": b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>",
        "html_as_image.png": b"<!doctype html><html><body>not an image</body></html>",
        "good.jpg": jpeg,
        "huge_text.txt": ("spam " * 200_000).encode(),  # 1 MB of text
        "control_chars.txt": "ok\x00\x07\x1b[31mred\x7f".encode(),
        "mixed_encodings.txt": "caf\u00e9 ".encode("utf-8") + "\u6211".encode("gbk") + b" \xff\xfe",
        "emoji_only.txt": "😂😂🔥💯".encode(),
    }
    for name, data in files.items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
