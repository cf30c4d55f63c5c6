"""One image file (bytes) -> RGB uint8 (S, S, 3), whatever its format or mode.

Policy (documented for users): EXIF orientation is applied; transparency is composited on
white; 16-bit and float images are rescaled to 8 bits; CMYK, palette, grayscale and other
modes are converted by Pillow; animated GIF/TIFF use their first frame. The shorter side is
resized to S and the centre S x S square is kept (no distortion; a no-op crop for square
sources such as STL10).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

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


def decode_image(data: bytes, size: int) -> np.ndarray:
    """Encoded image bytes -> (size, size, 3) uint8. Raises DecodeError with the reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            if img.format == "JPEG" and img.mode in ("RGB", "L", "CMYK"):
                img.draft(img.mode, (size, size))  # decode at a reduced scale when it is much larger
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
    except Image.DecompressionBombError as err:
        raise DecodeError(f"image too large to decode safely ({err})") from None
    except Image.UnidentifiedImageError:
        raise DecodeError("not an image Pillow can read (unknown format or not an image)") from None
    except (OSError, SyntaxError, EOFError) as err:
        raise DecodeError(f"corrupt or truncated image ({type(err).__name__}: {err})") from None
    except (ValueError, MemoryError, IndexError, TypeError, KeyError, ZeroDivisionError) as err:
        raise DecodeError(f"cannot convert this image to RGB ({type(err).__name__}: {err})") from None
