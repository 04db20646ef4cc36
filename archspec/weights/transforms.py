"""The preprocessing published weights expect, as torchvision's presets compute it.

Classification (`ImageClassification`): resize the shorter side to `resize` (the longer in
proportion, truncated), crop the centre `crop` x `crop`, scale to [0, 1], normalise by mean and
std. Dense prediction (`SemanticSegmentation`): the same without the crop. A PIL image is resized
by PIL, as torchvision resizes PIL images, so the result equals torchvision's to the bit; a tensor
(C x H x W, uint8 or float in [0, 1]) is resized by `interpolate` with antialiasing, a uint8 one
then rounded to whole levels in 0..255 as torchvision does (bicubic overshoots them).

An image file or a PIL image is read in the mode the weights' normalisation asks for: RGB for
three channels, grayscale (`L`) for one (a digit classifier's weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spec.weights import Transforms
from .fetch import WeightsError


@dataclass(frozen=True)
class Preprocess:
    """Callable: an image (a PIL image, a path, or a C x H x W tensor) -> a normalised float tensor."""

    transforms: Transforms

    def __call__(self, image: Any) -> Any:
        import torch

        t = self.transforms
        channels = len(t.mean)
        what = f"{image}: " if isinstance(image, (str, Path)) else ""
        if isinstance(image, (str, Path)):
            image = open_image(image, channels)
        if isinstance(image, torch.Tensor):
            x = _tensor_resized(image, t)
        else:
            mode = _MODES.get(channels)
            x = _pil_resized(image if mode is None or image.mode == mode else image.convert(mode), t)
        mean = torch.as_tensor(t.mean, dtype=x.dtype).view(-1, 1, 1)
        std = torch.as_tensor(t.std, dtype=x.dtype).view(-1, 1, 1)
        if x.shape[0] != mean.shape[0]:
            raise WeightsError(f"{what}the image has {x.shape[0]} channels, the weights' normalisation {mean.shape[0]}")
        return x.sub_(mean).div_(std)

    def __repr__(self) -> str:
        t = self.transforms
        crop = f", crop {t.crop}x{t.crop}" if t.crop else ""
        return (f"Preprocess(resize shorter side to {t.resize} ({t.interpolation}){crop}, "
                f"mean {list(t.mean)}, std {list(t.std)})")


# The PIL mode an image is read in, by the channels of the weights' normalisation.
_MODES = {3: "RGB", 1: "L"}


def open_image(path: str | Path, channels: int = 3) -> Any:
    """An image file as a PIL image of `channels` channels (RGB, or grayscale for 1); WeightsError
    when it is not one PIL can read (a file past PIL's decompression-bomb limit included)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert(_MODES.get(channels, "RGB"))
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such file") from None
    except Image.DecompressionBombError as exc:
        raise WeightsError(f"{path}: too large an image to read ({str(exc)[:120]})") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not an image PIL can read ({str(exc)[:120]})") from None


def resized_size(height: int, width: int, size: int) -> tuple[int, int]:
    """torchvision's `_compute_resized_output_size` for one size: the shorter side becomes `size`."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _offsets(height: int, width: int, crop: int) -> tuple[int, int]:
    return int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0))


def _pil_resized(image: Any, t: Transforms) -> Any:
    import numpy as np
    import torch
    from PIL import Image

    resample = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                "bicubic": Image.Resampling.BICUBIC}[t.interpolation]
    h, w = resized_size(image.height, image.width, t.resize)
    image = image.resize((w, h), resample)
    if t.crop:
        if t.crop > min(h, w):
            raise WeightsError(f"the crop {t.crop} is larger than the resized image {h}x{w}")
        top, left = _offsets(h, w, t.crop)
        image = image.crop((left, top, left + t.crop, top + t.crop))
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).to(torch.float32).div_(255)


def _tensor_resized(image: Any, t: Transforms) -> Any:
    import torch

    if image.ndim != 3:
        raise WeightsError(f"an image tensor is C x H x W, got shape {list(image.shape)}")
    x = image.to(torch.float32)
    h, w = resized_size(x.shape[1], x.shape[2], t.resize)
    antialias = t.interpolation != "nearest"
    x = torch.nn.functional.interpolate(x[None], size=(h, w), mode=t.interpolation, antialias=antialias,
                                        **({} if t.interpolation == "nearest" else {"align_corners": False}))[0]
    if image.dtype == torch.uint8:  # back to whole levels, as torchvision resizes a uint8 image, then to [0, 1]
        x = x.clamp_(0, 255).round_().div_(255)
    if t.crop:
        top, left = _offsets(h, w, t.crop)
        x = x[:, top: top + t.crop, left: left + t.crop]
    return x.contiguous()
