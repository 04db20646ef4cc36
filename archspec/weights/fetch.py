"""Weights files in the torch hub cache: found there without the network, else downloaded once.

The cache is torch's (`$TORCH_HOME/hub/checkpoints`, by default `~/.cache/torch/hub/checkpoints`),
so a file torchvision downloaded is used as it is, and the other way round. A download streams
into a temporary file beside its final name (core/atomic.py), its SHA-256 checked against the
entry's digest or prefix before the one rename: a failed, interrupted or corrupted download
never leaves a file under the final name. As torch.hub does, a file already in the cache is not
hashed again.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from ..core.atomic import atomic_path
from ..core.errors import ArchspecError
from ..progress import bar

HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")  # torch.hub's convention: resnet50-0676ba61.pth
CHUNK = 1 << 20
TIMEOUT_S = 30


class WeightsError(ArchspecError):
    """Weights that cannot be found, fetched, read or loaded; the CLI exits with code 2."""


def cache_dir() -> Path:
    """Where downloaded weights live: torch's hub cache (TORCH_HOME honoured)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def expected_hash(name: str, sha256: str | None) -> str | None:
    """The digest (or prefix) a file must have: the entry's, else the one in its name, if any."""
    if sha256:
        return sha256
    found = HASH_IN_NAME.search(name)
    return found.group(1) if found else None


def _open(url: str) -> IO[bytes]:
    """The response for `url` (a seam the tests replace: no test touches the network)."""
    return urllib.request.urlopen(url, timeout=TIMEOUT_S)  # http(s) only: the spec pattern, is_location


def cached(url: str, name: str, sha256: str | None = None) -> Path:
    """The local file of `url`: the cached `name` if present, else downloaded to it."""
    target = cache_dir() / name
    if target.is_file():
        return target
    _download(url, target, expected_hash(name, sha256))
    return target


def _download(url: str, target: Path, digest: str | None) -> None:
    hand = f"download it by hand and put it at {target}"
    try:
        response = _open(url)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError(f"cannot download {url} ({reason}); {hand}") from None
    sha = hashlib.sha256()
    with response, atomic_path(target) as tmp:
        total = _length(response)
        with open(tmp, "wb") as out, bar(total, f"downloading {target.name}") as advance:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, urllib.error.URLError) as exc:
                    raise WeightsError(f"the download of {url} broke off ({exc}); {hand}") from None
                if not chunk:
                    break
                out.write(chunk)
                sha.update(chunk)
                advance(len(chunk))
        if total is not None and os.path.getsize(tmp) != total:
            raise WeightsError(f"the download of {url} is truncated ({os.path.getsize(tmp):,} of {total:,} bytes); {hand}")
        if digest is not None and not sha.hexdigest().startswith(digest):
            raise WeightsError(f"{url}: the file's SHA-256 is {sha.hexdigest()}, the weights entry expects "
                               f"{digest}{'...' if len(digest) < 64 else ''}; not kept (a corrupted or replaced file)")


def _length(response: IO[bytes]) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
