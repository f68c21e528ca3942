"""JPEG compression in torch: a baseline JPEG round trip (4:2:0) per image of a batch, at per-image qualities.

:func:`jpeg` does what a libjpeg encoder + decoder pair (Pillow's ``save(format="JPEG", quality=q,
subsampling=2)`` then ``open``) does to the pixels, batched on the tensor's device:

1. 8-bit RGB -> YCbCr (JFIF / BT.601 full range) in libjpeg's fixed point;
2. 4:2:0 chroma subsampling (2x2 means, libjpeg's alternating rounding bias), edges replicated to whole 16x16 MCUs;
3. 8x8 block DCT (the orthonormal DCT-II of the JPEG standard), quantised to the nearest step of the IJG tables
   (Annex K) scaled by ``quality`` exactly as libjpeg's ``jpeg_set_quality`` with ``force_baseline``
   (:func:`quant_tables`);
4. dequantisation, inverse DCT, rounding and clamping to 0..255;
5. chroma upsampled by libjpeg's "fancy" triangle filter with its rounding, YCbCr -> RGB in fixed point, 8 bits.

It differs from libjpeg only in the DCTs, done in float here (libjpeg's are integer approximations): a
coefficient near a rounding boundary may land one quantisation step apart. Colour conversion, chroma down- and
upsampling and the tables are libjpeg's exact integer arithmetic. PSNR between this function's and Pillow 13
(libjpeg-turbo)'s decoded images, at qualities 10 / 30 / 50 / 75 / 95: 62.8 / 57.9 / 48.0 / 56.7 / 48.4 dB on a
synthetic 64x64 photo, 48.5 / 49.0 / 50.8 / 48.9 / 47.9 dB on a 61x45 one (``tests/degradation/test_jpeg.py``
asserts > 45 dB), 52.1 / 48.7 / 50.7 / 50.4 / 50.2 dB on average over 8 crops of 128x128 of the sample photos,
where Pillow's output is 26.9 to 39.1 dB from the original.

Which path :class:`~srgan.degradation.RealDegradation` uses: this one. ``benchmarks/degradation.py`` on a batch
of 16 x 3 x 128 x 128 at qualities 30..95 (``benchmarks/degradation.json``; a 2-core AVX-512 VM whose cores a
training run kept busy, benchmark at nice 15): with one torch thread, as in a data-loader worker, 6.9 ms per batch
here against 8.7 ms for Pillow encode + decode in a pool of 2 worker threads (the batch to uint8 numpy and back
included), PSNR between the two 50.2 dB. With torch's default 2 threads on those busy cores every torch op waits
for a descheduled thread: 315 ms here, 54 ms for Pillow's pool (whose own few torch ops suffer less). It also runs
where the batch is: a training batch on a GPU never goes to the host and back (not measured: no GPU here).
:func:`jpeg_pillow` is kept as the reference (tests, benchmark).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import ConfigError
from ._common import check_image

__all__ = ["jpeg", "jpeg_pillow", "quant_tables", "rgb_to_ycbcr", "ycbcr_to_rgb", "LUMA_TABLE", "CHROMA_TABLE"]

#: IJG / JPEG Annex K luminance quantisation table (quality 50), row-major (natural order, not zigzag).
LUMA_TABLE: tuple[int, ...] = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip

#: IJG / JPEG Annex K chrominance quantisation table (quality 50), row-major.
CHROMA_TABLE: tuple[int, ...] = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
)  # fmt: skip

# JFIF (BT.601 full range) colour conversion, on 0..255 values; chroma offset 128.
_RGB_TO_YCBCR = (
    (0.299, 0.587, 0.114),
    (-0.168735892, -0.331264108, 0.5),
    (0.5, -0.418687589, -0.081312411),
)
_YCBCR_TO_RGB = (
    (1.0, 0.0, 1.402),
    (1.0, -0.344136286, -0.714136286),
    (1.0, 1.772, 0.0),
)


def _qualities(quality: int | torch.Tensor | Sequence[int], n: int) -> torch.Tensor:
    """``quality`` as an int64 CPU tensor of ``n`` values in 1..100, or a ConfigError saying what came."""
    if isinstance(quality, bool):
        raise ConfigError(f"quality: expected an integer in 1..100 (or one per image), got {quality!r}")
    if isinstance(quality, (int, np.integer)):
        q = torch.full((n,), int(quality), dtype=torch.int64)
    else:
        try:
            q = torch.as_tensor(quality).detach().cpu().flatten()
        except (TypeError, ValueError, RuntimeError):
            raise ConfigError(
                f"quality: expected an integer in 1..100 or a tensor of one per image, got {type(quality).__name__}"
            ) from None
        if q.numel() == 1:
            q = q.expand(n)
        if q.numel() != n:
            raise ConfigError(f"quality: expected one value per image ({n}), got {q.numel()} values")
        if q.is_floating_point():
            if not torch.isfinite(q).all():
                raise ConfigError("quality: expected integers in 1..100, got NaN or infinity")
            q = q.round()
        q = q.to(torch.int64)
    if q.numel() and (int(q.min()) < 1 or int(q.max()) > 100):
        raise ConfigError(
            f"quality must be in 1..100 (libjpeg's scale; 75 is Pillow's default), got values "
            f"{int(q.min())}..{int(q.max())}"
        )
    return q


def quant_tables(quality: int | torch.Tensor | Sequence[int]) -> torch.Tensor:
    """The luminance and chrominance quantisation tables libjpeg writes at ``quality`` (``force_baseline``).

    Quality q in 1..100 scales the Annex K tables by ``5000 / q`` % below 50 and ``200 - 2q`` % from 50, each
    entry ``(base * scale + 50) // 100`` clamped to 1..255, as ``jpeg_set_quality(cinfo, q, TRUE)`` does.

    Args:
        quality: an int or one per image (a tensor or sequence of integers in 1..100).

    Returns:
        (N, 2, 8, 8) float32 on the CPU: ``[:, 0]`` luminance, ``[:, 1]`` chrominance, row-major (natural order).
    """
    n = 1 if isinstance(quality, (int, np.integer)) else int(torch.as_tensor(quality).numel())
    q = _qualities(quality, max(n, 1))
    scale = torch.where(q < 50, 5000 // q, 200 - 2 * q)  # percent
    base = torch.tensor([LUMA_TABLE, CHROMA_TABLE], dtype=torch.int64)  # (2, 64)
    tables = (base[None] * scale[:, None, None] + 50) // 100
    return tables.clamp(1, 255).view(-1, 2, 8, 8).to(torch.float32)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """JFIF RGB -> YCbCr on the same scale: (N, 3, H, W) with values in [0, 255] -> Y, Cb, Cr (chroma offset 128)."""
    m = torch.tensor(_RGB_TO_YCBCR, dtype=x.dtype, device=x.device)
    off = torch.tensor([0.0, 128.0, 128.0], dtype=x.dtype, device=x.device)
    return torch.einsum("ij,njhw->nihw", m, x) + off.view(1, 3, 1, 1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """JFIF YCbCr -> RGB, the inverse of :func:`rgb_to_ycbcr` (values in [0, 255], not clamped)."""
    m = torch.tensor(_YCBCR_TO_RGB, dtype=x.dtype, device=x.device)
    off = torch.tensor([0.0, 128.0, 128.0], dtype=x.dtype, device=x.device)
    return torch.einsum("ij,njhw->nihw", m, x - off.view(1, 3, 1, 1))


@lru_cache(maxsize=8)
def _dct_matrix_2d(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(64, 64) matrix of the orthonormal 8x8 DCT-II on row-major flattened blocks: ``kron(D, D)``."""
    k = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return torch.kron(d, d).to(device=device, dtype=dtype)


def _blocks(plane: torch.Tensor) -> torch.Tensor:
    """(B, H, W) with H, W multiples of 8 -> (B, H/8 * W/8, 64) row-major blocks."""
    b, h, w = plane.shape
    return plane.view(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4).reshape(b, (h // 8) * (w // 8), 64)


def _unblocks(blocks: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b = blocks.shape[0]
    return blocks.view(b, h // 8, w // 8, 8, 8).permute(0, 1, 3, 2, 4).reshape(b, h, w)


def _code_planes(planes: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """Quantise and dequantise the 8x8 DCT of (B, H, W) level-shifted planes with (B, 64) tables."""
    _, h, w = planes.shape
    dct = _dct_matrix_2d(planes.device, planes.dtype)
    coef = _blocks(planes) @ dct.t()
    t = tables[:, None, :]
    coef = coef.div_(t).round_().mul_(t)  # a float coefficient is (almost) never at a rounding tie
    return _unblocks(coef @ dct, h, w)


def _fix(v: float) -> int:
    """libjpeg's ``FIX(v)``: ``v`` in 16-bit fixed point."""
    return int(v * 65536 + 0.5)


# libjpeg's fixed-point colour conversions (jccolor.c, jdcolor.c) as float32 matrices: every product and partial
# sum below is a multiple of 2^-16 smaller than 256 in magnitude, so float32 holds it exactly and ``floor`` gives
# libjpeg's integer result (``>> 16``).
_ENCODE = [
    [_fix(c) / 65536 for c in row]
    for row in ((0.299, 0.587, 0.114), (-0.16874, -0.33126, 0.5), (0.5, -0.41869, -0.08131))
]
_ENCODE_BIAS = (0.5, 128 + (2**15 - 1) / 65536, 128 + (2**15 - 1) / 65536)
_DECODE = [[0.0, _fix(1.402) / 65536], [-_fix(0.34414) / 65536, -_fix(0.71414) / 65536], [_fix(1.772) / 65536, 0.0]]


def _encode_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """libjpeg's RGB -> YCbCr on (N, 3, H, W) integer-valued floats 0..255: integer-valued Y, Cb, Cr."""
    n, _, h, w = rgb.shape
    m = torch.tensor(_ENCODE, dtype=rgb.dtype, device=rgb.device)
    bias = torch.tensor(_ENCODE_BIAS, dtype=rgb.dtype, device=rgb.device).view(3, 1)
    return torch.matmul(m, rgb.reshape(n, 3, h * w)).add_(bias).floor_().view(n, 3, h, w)


def _decode_rgb(y: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """libjpeg's YCbCr -> RGB: (N, H, W) Y and (N, 2, H, W) Cb - 128, Cr - 128 (integer-valued) -> (N, 3, H, W)
    in 0..255."""
    n, _, h, w = chroma.shape
    m = torch.tensor(_DECODE, dtype=y.dtype, device=y.device)
    delta = torch.matmul(m, chroma.reshape(n, 2, h * w)).add_(0.5).floor_().view(n, 3, h, w)
    return delta.add_(y[:, None]).clamp_(0, 255)


def _downsample_h2v2(c: torch.Tensor) -> torch.Tensor:
    """libjpeg's 2x2 chroma mean (jcsample.c): ``(sum + bias) >> 2`` with bias 1, 2, 1, 2... along each row."""
    mean = F.avg_pool2d(c, 2)  # sum / 4, exact
    bias = 0.25 + 0.25 * (torch.arange(mean.shape[-1], device=c.device, dtype=c.dtype) % 2)
    return mean.add_(bias).floor_()


def _upsample_h2v2_fancy(c: torch.Tensor) -> torch.Tensor:
    """libjpeg's "fancy" 2x chroma upsampling (jdsample.c): the triangle filter, then ``(9a + 3b + 3c + d + 8 or 7)
    >> 4`` (8 on even output columns, 7 on odd ones), edges replicated. Bilinear interpolation with half-pixel
    centres computes ``(9a + 3b + 3c + d) / 16`` exactly on integer-valued floats."""
    up = F.interpolate(c, scale_factor=2, mode="bilinear", align_corners=False)
    bias = (8 - torch.arange(up.shape[-1], device=c.device, dtype=c.dtype) % 2) / 16
    return up.add_(bias).floor_()


def jpeg(x: torch.Tensor, quality: int | torch.Tensor | Sequence[int] = 75) -> torch.Tensor:
    """A baseline JPEG round trip (4:2:0 chroma subsampling) of each image, at a quality per image.

    Args:
        x: (N, 3, H, W) float RGB in [0, 1], any size, any device (values outside [0, 1] are clamped; the encoder
            sees the image rounded to 8 bits, as a JPEG file's pixels are).
        quality: libjpeg quality in 1..100, one int for the batch or a tensor / sequence of N integers (floats are
            rounded).

    Returns:
        (N, 3, H, W) in [0, 1], same dtype and device, on the 8-bit grid (multiples of 1/255): what a JPEG decoder
        gives back.

    Raises:
        InvalidImageError: ``x`` is not an (N, 3, H, W) floating-point tensor.
        ConfigError: a quality outside 1..100, or not one per image.
    """
    x = check_image(x, "jpeg", channels=3)
    n, _, h, w = x.shape
    q = _qualities(quality, n)
    compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    tables = quant_tables(q).to(device=x.device, dtype=compute).view(n, 2, 64)

    rgb = torch.round(x.detach().to(compute) * 255).clamp_(0, 255)
    # Whole MCUs (16x16): libjpeg replicates the last column and row.
    ph, pw = (-h) % 16, (-w) % 16
    if ph or pw:
        rgb = F.pad(rgb, (0, pw, 0, ph), mode="replicate")
    hp, wp = rgb.shape[-2:]
    ycc = _encode_ycbcr(rgb)
    luma = _code_planes(ycc[:, 0] - 128, tables[:, 0])
    chroma = _downsample_h2v2(ycc[:, 1:]).sub_(128).view(n * 2, hp // 2, wp // 2)
    chroma = _code_planes(chroma, tables[:, 1].repeat_interleave(2, dim=0))

    luma = luma[:, :h, :w].add(128).round_().clamp_(0, 255)
    # The decoder upsamples the chroma of the image's own extent (ceil(H/2) x ceil(W/2)), edges replicated.
    ch, cw = (h + 1) // 2, (w + 1) // 2
    # Chroma stays level-shifted (-128..127) through the upsampling: (x - 128) upsamples to (up(x) - 128) exactly.
    chroma = chroma.view(n, 2, hp // 2, wp // 2)[:, :, :ch, :cw].round().clamp_(-128, 127)
    up = _upsample_h2v2_fancy(chroma)[..., :h, :w]
    return _decode_rgb(luma, up).div_(255).to(x.dtype)


def _pillow_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, subsampling=2)
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("RGB"))


def jpeg_pillow(
    x: torch.Tensor,
    quality: int | torch.Tensor | Sequence[int] = 75,
    *,
    workers: int | None = None,
    pool: ThreadPoolExecutor | None = None,
) -> torch.Tensor:
    """The reference: each image through Pillow's JPEG encoder and decoder (4:2:0), in worker threads.

    Same arguments and result as :func:`jpeg`; the batch goes to the host and back. ``pool`` reuses a thread pool,
    else one of ``workers`` threads (default: one per image, at most 8) is made for the call.
    """
    x = check_image(x, "jpeg_pillow", channels=3)
    q = _qualities(quality, x.shape[0]).tolist()
    images = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    if pool is not None:
        decoded = list(pool.map(_pillow_round_trip, images, q))
    else:
        with ThreadPoolExecutor(max_workers=workers or min(8, len(images))) as own:
            decoded = list(own.map(_pillow_round_trip, images, q))
    out = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype)
    return out / 255
