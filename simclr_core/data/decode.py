"""One image file (bytes) -> RGB uint8 (S, S, 3), whatever its format or mode.

Policy (documented for users): EXIF orientation is applied; transparency is composited on
white; 16-bit and float images are rescaled to 8 bits; CMYK, palette, grayscale and other
modes are converted by Pillow; animated GIF/TIFF use their first frame. The shorter side is
resized to S and the centre S x S square is kept (no distortion; a no-op crop for square
sources such as STL10).

Size: an image of more than ``MAX_PIXELS`` (after JPEG's reduced-scale decoding) is refused from
its header, before any pixel is decoded: a 581 KB PNG can declare 12000 x 12000 pixels (432 MB
as RGB, several times that while converting). Pillow's own decompression-bomb warning is an error.
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS = 40_000_000  # 40 Mpx: any real photo (JPEG decodes huge ones at a reduced scale), no bomb
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")


class DecodeError(Exception):
    """Why one file could not become an image (reported and skipped by the caller)."""


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer or float grayscale -> 'L', scaled by the range the mode can hold."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16") or (img.mode == "I" and arr.max(initial=0) > 255):
        scaled = arr.astype(np.float32) / 257.0
    elif img.mode == "F" and arr.size and float(np.nanmax(arr)) <= 1.0:
        scaled = arr.astype(np.float32) * 255.0
    else:
        scaled = arr.astype(np.float32)
    return Image.fromarray(np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8), mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 'RGB' (alpha composited on white)."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "La", "PA") or (img.mode == "L" and "transparency" in img.info):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "RGBa"):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    return img.convert("RGB") if img.mode != "RGB" else img


def _too_many_pixels(size: str) -> str:
    return f"image too large to decode safely ({size}; at most {MAX_PIXELS / 1e6:.0f} Mpx): downscale it first"


def _check_pixels(w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        raise DecodeError(_too_many_pixels(f"{w} x {h} = {w * h / 1e6:.0f} Mpx"))


def _bomb_size(err: Exception) -> str:
    """Pillow refuses past its own limit before saying the side lengths; its message has the pixel count."""
    found = re.search(r"\((\d+) pixels\)", str(err))
    return f"{int(found.group(1)) / 1e6:.0f} Mpx" if found else "more pixels than Pillow allows"


def decode_image(data: bytes, size: int) -> np.ndarray:
    """Encoded image bytes -> (size, size, 3) uint8. Raises DecodeError with the reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format == "JPEG" and img.mode in ("RGB", "L", "CMYK"):
                img.draft(img.mode, (size, size))  # decode at a reduced scale when it is much larger
            _check_pixels(*img.size)
            img.load()
            img = ImageOps.exif_transpose(img)
            img = to_rgb(img)
            w, h = img.size
            if w < 1 or h < 1:
                raise DecodeError("image has no pixels")
            side = min(w, h)
            box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
            img = img.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
            return np.asarray(img, dtype=np.uint8)
    except DecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DecodeError(_too_many_pixels(_bomb_size(err))) from None
    except Image.UnidentifiedImageError:
        raise DecodeError("not an image Pillow can read (unknown format or not an image)") from None
    except (OSError, SyntaxError, EOFError) as err:
        raise DecodeError(f"corrupt or truncated image ({type(err).__name__}: {err})") from None
    except (ValueError, MemoryError, IndexError, TypeError, KeyError, ZeroDivisionError) as err:
        raise DecodeError(f"cannot convert this image to RGB ({type(err).__name__}: {err})") from None
