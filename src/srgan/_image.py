"""Images in and out of the model: PIL / numpy / torch <-> (N, 3, H, W) float tensors in [0, 1].

This is the one place where the inference pipeline converts images. The flow is::

    prep = prepare(image)                   # any supported PIL image, array or tensor
    sr_rgb = model(prep.rgb)                # (N, 3, H, W) float32 in [0, 1]
    sr_alpha = bicubic(prep.alpha)          # (N, 1, H, W) or None, upscaled separately
    out = restore(sr_rgb, sr_alpha, prep)   # same kind (and mode / dtype / layout) as ``image``

Conventions:

* **Grey images** (PIL ``1``, ``L``, ``LA``, ``La``, ``I;16*``, ``I``, ``F``; arrays ``(H, W)`` or ``(H, W, 1)``;
  tensors with one channel) are repeated to three channels for the model, and :func:`restore` turns the result
  back into one channel by taking the **mean** of the three output channels.
* **Rounding**: integer outputs are clamped to [0, 1], scaled to 255 or 65535 and rounded half to even
  (``torch.round``, as :func:`srgan.degradation.quantize` does). Float outputs are clamped, never rounded.
* **Float inputs** are assumed to be in [0, 1]; values outside are clipped (with a logged warning) and NaN or
  infinity is refused. ``prep.rgb`` is float32, so float64 inputs come back with float32 precision.
* **Animated files** (GIF, APNG, WebP, multi-page TIFF): :func:`open_image` reads the first frame only.
* **16-bit files**: Pillow opens 16-bit grey PNG/TIFF as ``I;16``/``I``, which keep all 16 bits here, but it
  opens 16-bit *RGB* PNGs as 8-bit ``RGB`` (a Pillow limitation), so their extra precision is lost on reading.
  Pass such images as ``uint16`` numpy arrays (e.g. read with OpenCV or tifffile) to keep it.
* **ICC profiles** are carried over when their colour space (``RGB``/``GRAY``) fits the output mode; the profile
  of a CMYK image is dropped, because the output is an RGB image converted naively by Pillow.
* **EXIF**: a PIL image's EXIF block goes to the output unchanged, orientation tag included, with the pixels as
  stored: the output displays like the input. :func:`open_image` reads files upright instead (orientation applied
  to the pixels and removed from the tag). The caller's image is never modified.
* **Writing**: :func:`save_image` writes the format its file name says (:data:`SAVE_FORMATS`); any other name is a
  :class:`~srgan.errors.ConfigError`, never PNG bytes under another extension.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, cast, overload

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from ._files import atomic_write
from .errors import ConfigError, ImageTooLargeError, InvalidImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "SAVE_FORMATS",
    "PreparedImage",
    "open_image",
    "prepare",
    "restore",
    "Uint8Canvas",
    "pixel_count",
    "is_image_name",
    "output_format",
    "read_software",
    "save_image",
]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"})
"""File suffixes treated as images when scanning folders (CLI, training data, evaluation)."""

SAVE_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".gif": "GIF",
    ".ppm": "PPM",
    ".pgm": "PPM",
    ".avif": "AVIF",
}
"""File suffix -> the Pillow format :func:`save_image` writes; any other suffix is refused (:func:`output_format`).
AVIF only where Pillow was built with an AVIF encoder."""

# Image suffixes Pillow may not know at all (no plugin), so that ``-o photo.heic`` still reads as a file name.
_OTHER_IMAGE_SUFFIXES = frozenset({".heic", ".heif", ".jxl", ".avif", ".avifs", ".jp2", ".psd", ".tga", ".ico"})
_EXIF_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "AVIF")  # formats whose files carry an EXIF block (and ICC)
_SOFTWARE = 0x0131  # the EXIF / TIFF "Software" tag

logger = logging.getLogger(__name__)

ImageT = TypeVar("ImageT", bound=Image.Image | NDArray[Any] | torch.Tensor)

# PIL input mode -> (mode converted to before reading the pixels, output mode). 8-bit modes only.
_PIL_8BIT_MODES: dict[str, tuple[str, str]] = {
    "RGB": ("RGB", "RGB"),
    "RGBA": ("RGBA", "RGBA"),
    "L": ("L", "L"),
    "LA": ("LA", "LA"),
    "1": ("L", "L"),
    "La": ("LA", "LA"),
    "RGBa": ("RGBA", "RGBA"),
    "PA": ("RGBA", "RGBA"),
    "RGBX": ("RGB", "RGB"),
    "CMYK": ("RGB", "RGB"),
    "YCbCr": ("RGB", "RGB"),
}
_PIL_16BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
# Errors Pillow raises while decoding a broken file (besides OSError without an errno).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


@dataclass(eq=False)
class PreparedImage(Generic[ImageT]):
    """An image as model input, plus what :func:`restore` needs to rebuild the same kind of image.

    Generic in the input's type, so that ``restore(..., prepare(image))`` is typed like ``image``.

    Attributes:
        rgb: (N, 3, H, W) float32 in [0, 1], contiguous; N is 1 except for batched (N, C, H, W) tensors. On the
            input tensor's device for torch inputs, on the CPU otherwise.
        alpha: (N, 1, H, W) float32 in [0, 1], or None when the image has no alpha channel.
        kind: what the input was: ``"pil"``, ``"numpy"`` or ``"torch"``.
        grey: the input had one grey channel (repeated to three in ``rgb``; restored as their mean).
        bit_depth: 8 or 16 for integer outputs (rounded to 255 or 65535 levels), None for float outputs.
        mode: PIL output mode (``RGB``, ``RGBA``, ``L``, ``LA``, ``I;16`` or ``F``); None for arrays and tensors.
        icc_profile: ICC profile bytes of a PIL input (set as ``info["icc_profile"]`` on the output), or None.
        exif: EXIF bytes of a PIL input, unchanged (orientation tag included, since the pixels are not turned),
            set as ``info["exif"]`` on the output so that it displays like the input; or None.
        layout: ``"HW"`` or ``"HWC"`` for numpy, ``"CHW"`` or ``"NCHW"`` for torch, None for PIL.
        numpy_dtype: dtype of a numpy input (byte order included), else None.
        torch_dtype: dtype of a torch input, else None.
        device: device of a torch input, else None.
    """

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    kind: Literal["pil", "numpy", "torch"]
    grey: bool
    bit_depth: Literal[8, 16] | None
    mode: str | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    layout: Literal["HW", "HWC", "CHW", "NCHW"] | None = None
    numpy_dtype: np.dtype[Any] | None = None
    torch_dtype: torch.dtype | None = None
    device: torch.device | None = None


# --------------------------------------------------------------------------------------------------- reading files


def open_image(path: str | os.PathLike[str], *, max_pixels: int | None = None, scale: int = 1) -> Image.Image:
    """Read an image file fully into memory, upright, and close the file.

    The EXIF orientation is applied (``ImageOps.exif_transpose``) and ``info["icc_profile"]`` is kept. Of an
    animated or multi-page file only the first frame is read. The pixel mode is left as stored (``P``, ``CMYK``,
    ``I;16``...); :func:`prepare` deals with it.

    Args:
        path: the image file.
        max_pixels: refuse images with more than this many pixels (checked from the header, before decoding).
            Pillow's own limit, ``PIL.Image.MAX_IMAGE_PIXELS``, applies as well: images above it are refused
            instead of only warned about.
        scale: ``max_pixels`` bounds the image upscaled by this factor (the ``max_output_pixels`` of
            :meth:`srgan.SRGAN.upscale`, which the error message then names).

    Raises:
        ImageTooLargeError: the image (times ``scale``) has more pixels than ``max_pixels``, or more than Pillow's
            decompression bomb limit.
        InvalidImageError: the file is empty, not an image Pillow can read, truncated or corrupt.
        OSError: the file cannot be read at all (missing, a directory, no permission).
    """
    if max_pixels is not None and max_pixels < 1:
        option = "max_pixels" if scale == 1 else "max_output_pixels"
        raise ConfigError(f"{option} must be a positive number of pixels or None, got {max_pixels}")
    name = os.fspath(path)
    try:
        with Image.open(name) as opened:
            width, height = opened.size
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse those too. (Checked here rather than
            # by turning the warning into an error: warnings filters are process-wide, not thread-safe.)
            bomb_limit = Image.MAX_IMAGE_PIXELS
            if bomb_limit is not None and width * height > bomb_limit:
                raise Image.DecompressionBombError(
                    f"Image size ({width * height} pixels) exceeds limit of {bomb_limit} pixels"
                )
            if max_pixels is not None and width * height * scale**2 > max_pixels:
                if scale == 1:
                    raise ImageTooLargeError(
                        f"{name} is {width}x{height} = {width * height} pixels, more than "
                        f"max_pixels={max_pixels}; downscale or crop it first, or raise max_pixels"
                    )
                raise ImageTooLargeError(
                    f"{name} is {width}x{height}, so its x{scale} output would be {width * scale}x"
                    f"{height * scale} = {width * height * scale**2} pixels, more than "
                    f"max_output_pixels={max_pixels}; downscale or crop it first, or pass a larger "
                    "max_output_pixels (or None) if you have the memory"
                )
            if getattr(opened, "is_animated", False):
                logger.info("%s has several frames; using the first one", name)
            opened.load()
            image = _upright(opened, name)
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(
            f"{name} is refused as a possible decompression bomb ({e}); if you trust the file, raise "
            "PIL.Image.MAX_IMAGE_PIXELS (or set it to None), or downscale the image first"
        ) from e
    except UnidentifiedImageError as e:
        if os.path.getsize(name) == 0:
            raise InvalidImageError(f"{name} is an empty file (0 bytes); write or download it again") from e
        raise InvalidImageError(
            f"{name} is not an image format Pillow can read; check the file or convert it to PNG or JPEG"
        ) from e
    except InvalidImageError:
        raise
    except _DECODE_ERRORS as e:
        if isinstance(e, OSError) and e.errno == errno.ELOOP:
            raise InvalidImageError(
                f"{name} is a symbolic link loop: expected a link that ends at an image file, got links that lead "
                "back to themselves; fix or remove the link"
            ) from e
        if isinstance(e, OSError) and e.errno is not None:
            raise  # a file system error (missing file, permission, I/O error), not a broken image
        raise InvalidImageError(
            f"{name} is truncated or corrupt ({type(e).__name__}: {e}); write or download it again"
        ) from e
    if image.width == 0 or image.height == 0:
        raise InvalidImageError(f"{name} has no pixels (size {image.width}x{image.height})")
    return image


def _exif_bytes(image: Image.Image) -> bytes | None:
    """The image's EXIF block as bytes (orientation included), or None; ``image`` is not modified.

    ``getexif()`` returns the image's own cached block, so it is only read here, never changed.
    """
    try:
        exif = image.getexif()
        if not exif:
            return None
        return exif.tobytes()
    except Exception as e:  # a broken EXIF block is dropped, not fatal
        logger.warning("dropping unreadable EXIF metadata (%s)", e)
        return None


def _upright(image: Image.Image, name: str) -> Image.Image:
    """An in-memory copy of a loaded ``image`` with its EXIF orientation applied and its ICC profile kept."""
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception as e:  # a broken EXIF block (many possible errors) should not make the image unusable
        logger.warning("%s: cannot apply the EXIF orientation (%s); using the image as stored", name, e)
        upright = None
    if upright is None or upright is image:
        upright = image.copy()
    icc = image.info.get("icc_profile")
    if icc:
        upright.info["icc_profile"] = icc
    return upright


# ---------------------------------------------------------------------------------------------- image -> tensor


@overload
def prepare(image: Image.Image) -> PreparedImage[Image.Image]: ...
@overload
def prepare(image: NDArray[Any]) -> PreparedImage[NDArray[Any]]: ...
@overload
def prepare(image: torch.Tensor) -> PreparedImage[torch.Tensor]: ...
@overload
def prepare(
    image: Image.Image | NDArray[Any] | torch.Tensor,
) -> PreparedImage[Image.Image | NDArray[Any] | torch.Tensor]: ...
def prepare(image: Image.Image | NDArray[Any] | torch.Tensor) -> PreparedImage[Any]:
    """Turn an image into model input.

    Accepted inputs:

    * PIL images of mode RGB, RGBA, L, LA, P (RGBA if it has transparency, else RGB), PA, CMYK and YCbCr (to RGB),
      1 (to L), La and RGBa (un-premultiplied), I;16 / I;16B / I;16L (16-bit grey, kept exactly), I (32-bit
      integers read as 16-bit values: negatives are clipped to 0, values above 65535 are refused; restored as
      I;16) and F (floats in [0, 1], restored as F). Other modes are converted to RGB when Pillow can.
    * numpy arrays (H, W) or (H, W, C) with C in {1, 3, 4}, of dtype uint8, uint16 or float16/32/64 in [0, 1].
    * torch tensors (C, H, W) or (N, C, H, W) with C in {1, 3, 4}, uint8 or floating point in [0, 1].

    Returns:
        A :class:`PreparedImage` whose ``rgb`` is (N, 3, H, W) float32 in [0, 1] and ``alpha`` (N, 1, H, W) or None.

    Raises:
        InvalidImageError: an unsupported type, mode, shape or dtype; an empty image; NaN or infinite values.
    """
    if isinstance(image, Image.Image):
        return _prepare_pil(image)
    if isinstance(image, np.ndarray):
        return _prepare_numpy(image)
    if isinstance(image, torch.Tensor):
        return _prepare_torch(image)
    raise InvalidImageError(
        f"expected a PIL.Image.Image, numpy.ndarray or torch.Tensor, got {type(image).__name__}; "
        "to read a file, use open_image(path) first"
    )


def _prepare_pil(image: Image.Image) -> PreparedImage[Image.Image]:
    if image.width == 0 or image.height == 0:
        raise InvalidImageError(f"the image has no pixels (size {image.width}x{image.height}, mode {image.mode!r})")
    mode = image.mode
    bit_depth: Literal[8, 16] | None
    if mode in _PIL_16BIT_MODES:
        array: NDArray[Any] = np.asarray(image)
        scale: float | None = 65535.0
        out_mode, bit_depth = "I;16", 16
    elif mode == "I":
        array = np.asarray(image)
        if int(array.max()) > 65535:
            raise InvalidImageError(
                f"a mode 'I' image is read as 16-bit values, but this one goes up to {int(array.max())} (> 65535); "
                "rescale it to [0, 65535] (mode 'I;16') or to [0, 1] (mode 'F') first"
            )
        if int(array.min()) < 0:
            logger.warning("mode 'I' image has negative values (down to %d); clipping them to 0", int(array.min()))
            array = np.clip(array, 0, None)
        scale, out_mode, bit_depth = 65535.0, "I;16", 16
    elif mode == "F":
        array, scale, out_mode, bit_depth = np.asarray(image), None, "F", None
    else:
        if mode == "P":
            has_alpha = "transparency" in image.info or (image.palette is not None and image.palette.mode == "RGBA")
            read_mode = out_mode = "RGBA" if has_alpha else "RGB"
        elif mode in _PIL_8BIT_MODES:
            read_mode, out_mode = _PIL_8BIT_MODES[mode]
        else:
            read_mode = out_mode = "RGB"
        try:
            converted = image if read_mode == mode else image.convert(read_mode)
        except ValueError as e:
            raise InvalidImageError(
                f"cannot convert a PIL image of mode {mode!r} to {read_mode}; convert it to RGB first"
            ) from e
        array, scale, bit_depth = np.asarray(converted), 255.0, 8
    tensor = _array_to_tensor(array, scale, f"PIL image of mode {mode!r}")
    rgb, alpha, grey = _split_channels(tensor)
    return PreparedImage(
        rgb=rgb,
        alpha=alpha,
        kind="pil",
        grey=grey,
        bit_depth=bit_depth,
        mode=out_mode,
        icc_profile=_icc_for(image.info.get("icc_profile"), grey=grey),
        exif=_exif_bytes(image),
    )


def _prepare_numpy(array: NDArray[Any]) -> PreparedImage[NDArray[Any]]:
    if isinstance(array, np.matrix):
        raise InvalidImageError(
            f"expected a numpy.ndarray of shape (H, W) or (H, W, C), got numpy.matrix (shape {array.shape}, "
            "matrix semantics); pass np.asarray(image)"
        )
    if isinstance(array, np.ma.MaskedArray):
        raise InvalidImageError(
            f"expected a numpy.ndarray, got a masked array (shape {array.shape}) whose mask would be ignored; "
            "fill the masked pixels first, e.g. image.filled(0)"
        )
    dtype = array.dtype
    if dtype.kind == "u" and dtype.itemsize in (1, 2):
        scale: float | None = 255.0 if dtype.itemsize == 1 else 65535.0
        bit_depth: Literal[8, 16] | None = 8 if dtype.itemsize == 1 else 16
    elif dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        scale, bit_depth = None, None
    else:
        raise InvalidImageError(
            f"expected an array of dtype uint8, uint16 or float16/32/64 (floats in [0, 1]), got {dtype} "
            f"(shape {array.shape}); convert it, e.g. with array.astype(np.float32) / 255"
        )
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise InvalidImageError(
            f"expected an array of shape (H, W) or (H, W, C) with C in {{1, 3, 4}}, got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidImageError(f"the array has no pixels (shape {array.shape})")
    tensor = _array_to_tensor(array, scale, f"array of dtype {dtype}")
    rgb, alpha, grey = _split_channels(tensor)
    return PreparedImage(
        rgb=rgb,
        alpha=alpha,
        kind="numpy",
        grey=grey,
        bit_depth=bit_depth,
        layout="HW" if array.ndim == 2 else "HWC",
        numpy_dtype=dtype,
    )


def _prepare_torch(tensor: torch.Tensor) -> PreparedImage[torch.Tensor]:
    if tensor.layout != torch.strided:
        raise InvalidImageError(
            f"expected a dense tensor, got {tensor.layout} (shape {tuple(tensor.shape)}); convert it with "
            "tensor.to_dense()"
        )
    if tensor.device.type == "meta":
        raise InvalidImageError(
            f"expected a tensor holding pixel values, got one on the 'meta' device (shape {tuple(tensor.shape)}, "
            "no values); create or load it on a real device such as 'cpu' or 'cuda'"
        )
    dtype = tensor.dtype
    if dtype != torch.uint8 and not dtype.is_floating_point:
        raise InvalidImageError(
            f"expected a tensor of dtype uint8 or floating point (in [0, 1]), got {dtype} "
            f"(shape {tuple(tensor.shape)}); convert it, e.g. with tensor.float() / 255"
        )
    if tensor.ndim not in (3, 4) or tensor.shape[-3] not in (1, 3, 4):
        raise InvalidImageError(
            f"expected a tensor of shape (C, H, W) or (N, C, H, W) with C in {{1, 3, 4}}, got {tuple(tensor.shape)}"
        )
    if tensor.numel() == 0:
        raise InvalidImageError(f"the tensor has no pixels (shape {tuple(tensor.shape)})")
    batch = tensor.detach() if tensor.ndim == 4 else tensor.detach()[None]
    if dtype == torch.uint8:
        x = batch.to(torch.float32).div_(255.0)
    else:
        x = _clip_float(batch.to(torch.float32), f"tensor of dtype {dtype}")
    rgb, alpha, grey = _split_channels(x)
    return PreparedImage(
        rgb=rgb,
        alpha=alpha,
        kind="torch",
        grey=grey,
        bit_depth=8 if dtype == torch.uint8 else None,
        layout="NCHW" if tensor.ndim == 4 else "CHW",
        torch_dtype=dtype,
        device=tensor.device,
    )


def _array_to_tensor(array: NDArray[Any], scale: float | None, what: str) -> torch.Tensor:
    """(H, W) or (H, W, C) array -> new (1, C, H, W) float32 tensor in [0, 1] (integers divided by ``scale``)."""
    hwc = array[:, :, None] if array.ndim == 2 else array
    # One pass copies any layout or byte order into a C-contiguous, native float32 (C, H, W) array.
    chw = np.moveaxis(hwc, -1, 0).astype(np.float32, order="C")
    if scale is not None:
        chw /= np.float32(scale)
        return torch.from_numpy(chw)[None]
    return _clip_float(torch.from_numpy(chw)[None], what)


def _clip_float(x: torch.Tensor, what: str) -> torch.Tensor:
    """Check a float image for NaN / infinity and clip it to [0, 1] (new tensor)."""
    if not bool(torch.isfinite(x).all()):
        raise InvalidImageError(f"the {what} contains NaN or infinite values; replace them (e.g. np.nan_to_num)")
    low, high = float(x.min()), float(x.max())
    if low < -1e-3 or high > 1 + 1e-3:
        logger.warning(
            "%s has values in [%g, %g]; srgan expects [0, 1] and clips (divide 8-bit data by 255)", what, low, high
        )
    return x.clamp(0.0, 1.0)


def _split_channels(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """(N, C, H, W) float, C in {1, 2, 3, 4} -> (rgb (N, 3, H, W), alpha (N, 1, H, W) or None, grey)."""
    channels = x.shape[1]
    grey = channels <= 2
    colour = x[:, :1].expand(-1, 3, -1, -1) if grey else x[:, :3]
    alpha = x[:, channels - 1 :].contiguous() if channels in (2, 4) else None
    return colour.contiguous(), alpha, grey


def _icc_for(icc: object, *, grey: bool) -> bytes | None:
    """``icc`` unless its header names a colour space other than the output's (GRAY or RGB), e.g. CMYK."""
    if not isinstance(icc, bytes) or not icc:
        return None
    space = icc[16:20]  # the ICC header's data colour space signature
    if len(space) == 4 and space != (b"GRAY" if grey else b"RGB "):
        logger.info("dropping an ICC profile for %r data: the output is %s", space, "grey" if grey else "RGB")
        return None
    return icc


# ---------------------------------------------------------------------------------------------- tensor -> image


def restore(rgb: torch.Tensor, alpha: torch.Tensor | None, prep: PreparedImage[ImageT]) -> ImageT:
    """Rebuild the same kind of image as the one :func:`prepare` was given, at the size of ``rgb``.

    Args:
        rgb: (N, 3, h, w) floating point, any device and dtype; clamped to [0, 1].
        alpha: (N, 1, h, w) floating point, required exactly when ``prep.alpha`` is not None; clamped to [0, 1].
        prep: what :func:`prepare` returned for the input.

    Returns:
        PIL inputs: an image of mode ``prep.mode`` (RGB, RGBA, L, LA, I;16 or F) with the ICC profile in ``info``.
        numpy inputs: an array of the input's dtype and layout ((h, w) or (h, w, C)).
        torch inputs: a tensor of the input's dtype, device and layout ((C, h, w) or (N, C, h, w)).
        Integer outputs are rounded half to even; grey outputs are the mean of the three channels.

    Raises:
        InvalidImageError: ``rgb`` / ``alpha`` do not have the shapes above, or a batch of several images is given
            for a PIL or numpy input.
    """
    x = _merge_channels(rgb, alpha, prep)
    if prep.kind == "torch":
        out = x if prep.torch_dtype is None else x.to(prep.torch_dtype)
        return cast(ImageT, out[0] if prep.layout == "CHW" else out)
    hwc = x[0].permute(1, 2, 0).numpy()
    dtype = np.float32 if prep.bit_depth is None else np.uint8 if prep.bit_depth == 8 else np.uint16
    if prep.kind == "numpy":
        array = hwc[:, :, 0] if prep.layout == "HW" else hwc
        return cast(ImageT, array.astype(dtype if prep.numpy_dtype is None else prep.numpy_dtype, order="C"))
    array = hwc.astype(dtype, order="C")
    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    if image.mode != prep.mode:  # cannot happen with what prepare returns
        raise InvalidImageError(f"cannot rebuild a {prep.mode!r} image from {array.shape[2]} channels of {dtype}")
    return cast(ImageT, _with_metadata(image, prep))


def _with_metadata(image: Image.Image, prep: PreparedImage[Any]) -> Image.Image:
    """Carry the input's ICC profile and EXIF (orientation removed) over to the output image."""
    if prep.icc_profile:
        image.info["icc_profile"] = prep.icc_profile
    if prep.exif:
        image.info["exif"] = prep.exif
    return image


class Uint8Canvas(Generic[ImageT]):
    """The output of an 8-bit colour PIL or numpy input, filled tile by tile: the memory-lean twin of :func:`restore`.

    Each tile is rounded straight into the final image, so the output exists once: a PIL image (4 bytes per
    pixel, as Pillow stores RGB and RGBA) written with ``paste``, no (h, w, C) array copied into it at the end;
    for a numpy input an (h, w, 3 or 4) uint8 array. :attr:`nbytes` is what it holds, for the memory budget.
    """

    def __init__(self, prep: PreparedImage[ImageT], height: int, width: int) -> None:
        if prep.kind == "torch" or prep.bit_depth != 8 or prep.grey:
            raise InvalidImageError(f"Uint8Canvas holds 8-bit colour PIL/numpy images, got {prep.kind} {prep.mode}")
        self.prep = prep
        self.channels = 3 if prep.alpha is None else 4
        self._image: Image.Image | None = None
        self._array: torch.Tensor | None = None
        if prep.kind == "pil":
            if prep.mode not in ("RGB", "RGBA") or (prep.mode == "RGBA") != (self.channels == 4):
                raise InvalidImageError(f"cannot rebuild a {prep.mode!r} image from {self.channels} uint8 channels")
            self._image = Image.new(prep.mode, (width, height))
            self.nbytes = 4 * height * width
        else:
            self._array = torch.empty(height, width, self.channels, dtype=torch.uint8)
            self.nbytes = self._array.nbytes

    def paste(self, y: int, x: int, rgb: torch.Tensor) -> None:
        """Write ``rgb`` (h, w, 3) float CPU tensor, already scaled to [0, 255] and rounded, at row ``y``, column
        ``x``."""
        if self._array is not None:
            self._array[y : y + rgb.shape[0], x : x + rgb.shape[1], :3] = rgb
        else:
            assert self._image is not None
            tile = Image.fromarray(rgb.to(torch.uint8).contiguous().numpy())
            self._image.paste(tile, (x, y))

    def put_alpha(self, alpha: torch.Tensor) -> None:
        """Set the alpha channel from ``alpha`` (h, w) float CPU tensor, already scaled to [0, 255] and rounded."""
        if self.channels != 4:
            raise InvalidImageError("the input had no alpha channel")
        if self._array is not None:
            self._array[:, :, 3] = alpha
        else:
            assert self._image is not None
            self._image.putalpha(Image.fromarray(alpha.to(torch.uint8).numpy()))

    def result(self) -> ImageT:
        """The output, as the input's kind, with the input's ICC profile and EXIF for a PIL input."""
        if self._array is not None:
            return cast(ImageT, self._array.numpy())
        assert self._image is not None
        return cast(ImageT, _with_metadata(self._image, self.prep))


def _merge_channels(rgb: torch.Tensor, alpha: torch.Tensor | None, prep: PreparedImage[Any]) -> torch.Tensor:
    """Validate, move to the output device, reduce grey, append alpha, clamp and round: (N, C, h, w)."""
    if rgb.ndim != 4 or rgb.shape[1] != 3 or not rgb.dtype.is_floating_point:
        raise InvalidImageError(
            f"expected rgb of shape (N, 3, H, W), floating point, got {tuple(rgb.shape)} {rgb.dtype}"
        )
    if prep.kind != "torch" and rgb.shape[0] != 1:
        raise InvalidImageError(f"a {prep.kind} image is a single image, but rgb holds a batch of {rgb.shape[0]}")
    if (alpha is None) != (prep.alpha is None):
        raise InvalidImageError(
            "alpha must be given exactly when the input had an alpha channel "
            f"(input {'had' if prep.alpha is not None else 'had no'} alpha, got {'none' if alpha is None else 'one'})"
        )
    if alpha is not None and (
        alpha.ndim != 4 or alpha.shape[1] != 1 or alpha.shape[0] != rgb.shape[0] or alpha.shape[2:] != rgb.shape[2:]
    ):
        raise InvalidImageError(
            f"expected alpha of shape {(rgb.shape[0], 1, *rgb.shape[2:])} to match rgb, got {tuple(alpha.shape)}"
        )
    device = prep.device if prep.kind == "torch" else torch.device("cpu")
    work = torch.float64 if prep.torch_dtype == torch.float64 else torch.float32
    x = rgb.detach().to(device=device, dtype=work)
    if prep.grey:
        x = x.mean(dim=1, keepdim=True)
    if alpha is not None:
        x = torch.cat([x, alpha.detach().to(device=device, dtype=work)], dim=1)
    x = x.clamp(0.0, 1.0)  # a new tensor: the in-place ops below never touch the caller's
    if prep.bit_depth is not None:
        x.mul_(255.0 if prep.bit_depth == 8 else 65535.0).round_()
    return x


# ----------------------------------------------------------------------------------------------------- helpers


def pixel_count(image: Image.Image | NDArray[Any] | torch.Tensor) -> tuple[int, int]:
    """(height, width) of a PIL image, an (H, W[, C]) array or a (C, H, W) / (N, C, H, W) tensor."""
    if isinstance(image, Image.Image):
        return image.height, image.width
    if isinstance(image, np.ndarray):
        if image.ndim < 2:
            raise InvalidImageError(f"expected an array of shape (H, W) or (H, W, C), got shape {image.shape}")
        return int(image.shape[0]), int(image.shape[1])
    if isinstance(image, torch.Tensor):
        if image.ndim < 3:
            raise InvalidImageError(
                f"expected a tensor of shape (C, H, W) or (N, C, H, W), got shape {tuple(image.shape)}"
            )
        return int(image.shape[-2]), int(image.shape[-1])
    raise InvalidImageError(f"expected a PIL.Image.Image, numpy.ndarray or torch.Tensor, got {type(image).__name__}")


def _fit_mode(img: Image.Image, fmt: str) -> Image.Image:
    """Convert modes a format cannot store: float grey to 16-bit PNG (kept as float in TIFF), 16-bit and float grey
    to 8 bits outside PNG / TIFF, alpha dropped for JPEG, BMP and PPM."""
    out = img
    if img.mode == "F" and fmt == "TIFF":
        pass  # TIFF stores 32-bit floats as they are
    elif img.mode == "F":
        arr = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
        out = (
            Image.fromarray((arr * 65535).round().astype(np.uint16))
            if fmt in ("PNG", "TIFF")
            else Image.fromarray((arr * 255).round().astype(np.uint8))
        )
    elif img.mode in ("I;16", "I") and fmt not in ("PNG", "TIFF"):
        arr16 = np.asarray(img, dtype=np.float64)
        out = Image.fromarray((arr16 / 257.0).round().clip(0, 255).astype(np.uint8))
    elif fmt in ("JPEG", "BMP", "PPM") and img.mode in ("LA", "RGBA"):
        out = img.convert("RGB" if img.mode == "RGBA" else "L")
    elif fmt == "JPEG" and img.mode not in ("RGB", "L", "CMYK"):
        out = img.convert("RGB")
    elif fmt == "GIF" and img.mode == "LA":  # Pillow's GIF writer keeps the transparency of RGBA only
        out = img.convert("RGBA")
    if out is not img:
        for key in ("icc_profile", "exif"):
            if img.info.get(key):
                out.info[key] = img.info[key]
    return out


def is_image_name(path: str | os.PathLike[str]) -> bool:
    """Whether ``path``'s suffix names an image format (one srgan reads or writes, or one Pillow knows)."""
    suffix = os.path.splitext(path)[1].lower()
    return (
        suffix in SAVE_FORMATS
        or suffix in IMAGE_EXTENSIONS
        or suffix in _OTHER_IMAGE_SUFFIXES
        or suffix in Image.registered_extensions()
    )


def output_format(path: str | os.PathLike[str]) -> str:
    """The Pillow format :func:`save_image` writes for ``path`` (``"PNG"``, ``"JPEG"``...), from its suffix.

    Raises:
        ConfigError: the suffix is not one of :data:`SAVE_FORMATS`, or this Pillow has no encoder for it.
    """
    name = os.fspath(path)
    suffix = os.path.splitext(name)[1].lower()
    fmt = SAVE_FORMATS.get(suffix)
    Image.init()  # registers every plugin, so that Image.SAVE lists them all
    if fmt is not None and fmt in Image.SAVE:
        return fmt
    writable = " ".join(s for s, f in SAVE_FORMATS.items() if f in Image.SAVE)
    if fmt is not None:
        why = f"this Pillow has no {fmt} encoder (install a Pillow built with it)"
    elif suffix in Image.registered_extensions():
        why = f"srgan does not write {Image.registered_extensions()[suffix]} files"
    else:
        why = "not an image format srgan writes"
    raise ConfigError(
        f"cannot write {name}: expected a file name ending in one of {writable}, got {suffix or 'no suffix'!r} "
        f"({why}); choose one of those extensions"
    )


def read_software(path: str | os.PathLike[str]) -> str | None:
    """The EXIF / TIFF ``Software`` tag of an image file, read from its header (no pixel is decoded), or None.

    A file that cannot be read, or has no such tag, gives None.
    """
    try:
        with Image.open(os.fspath(path)) as image:
            tags = getattr(image, "tag_v2", None)  # TIFF: the tags of the first page
            if tags is not None:
                value = tags.get(_SOFTWARE)
            else:
                raw = image.info.get("exif")
                if not raw:
                    return None
                exif = Image.Exif()
                exif.load(raw)
                value = exif.get(_SOFTWARE)
    except Exception:  # any unreadable file or metadata: not marked (it fails later with its own error)
        return None
    return value if isinstance(value, str) else None


def _with_software(exif: object, software: str) -> bytes:
    """``exif`` (EXIF bytes or None) with its ``Software`` tag set to ``software``."""
    block = Image.Exif()
    if isinstance(exif, bytes) and exif:
        try:
            block.load(exif)
        except Exception as e:  # a broken block is replaced, not fatal
            logger.warning("dropping unreadable EXIF metadata (%s)", e)
            block = Image.Exif()
    block[_SOFTWARE] = software
    return block.tobytes()


def save_image(img: Image.Image, dest: str | os.PathLike[str], *, software: str | None = None) -> None:
    """Save ``img`` to ``dest`` atomically, in the format its suffix names (:data:`SAVE_FORMATS`).

    Modes the format cannot store are converted (float grey to 16 bits in PNG, kept as float in TIFF; 16-bit and
    float grey to 8 bits outside PNG and TIFF; alpha dropped for JPEG, BMP and PPM); the ICC profile and EXIF data
    are kept where the format stores them (PNG, JPEG, WebP, TIFF, AVIF); JPEG at quality 95. ``software`` sets the
    EXIF ``Software`` tag in those formats (how ``srgan upscale`` marks its outputs). The folder is created if
    needed, and a failure never leaves a partial file.

    Raises:
        ConfigError: ``dest``'s suffix is not a format srgan writes (see :func:`output_format`).
        OSError: the file cannot be written.
    """
    fmt = output_format(dest)
    img = _fit_mode(img, fmt)
    kwargs: dict[str, object] = {}
    icc = img.info.get("icc_profile")
    if icc and fmt in _EXIF_FORMATS:
        kwargs["icc_profile"] = icc
    exif = img.info.get("exif")
    if software is not None and fmt in _EXIF_FORMATS:
        exif = _with_software(exif, software)
    if exif and fmt in _EXIF_FORMATS:
        kwargs["exif"] = exif
    if fmt == "JPEG":
        kwargs["quality"] = 95
    atomic_write(dest, lambda f: img.save(f, format=fmt, **kwargs), suffix=".partial")
