"""Pretrained weights of the metric networks: where they live, how they are checked, how to get them.

Every file is resolved from the standard torch cache ``$TORCH_HOME/hub/checkpoints/<exact name>``
(the place torchvision, lpips and pytorch-fid look), never downloaded implicitly: an evaluation
must not change behaviour with the network. The hex suffix of each official file name is the
start of the file's sha256 (torch.hub's own convention, ``check_hash``), so a file is verified
by hashing it and comparing with its name. Tests use random-init files with the right names,
which cannot pass that check; they opt in with ``allow_unverified=True`` and every result then
says the weights were unverified.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bench.errors import MissingWeightError


@dataclass(frozen=True)
class WeightSpec:
    key: str
    filename: str
    url: str
    used_by: str

    @property
    def hash_prefix(self) -> str | None:
        match = re.search(r"-([a-f0-9]{6,})\.[A-Za-z]+$", self.filename)
        return match.group(1) if match else None


WEIGHTS: dict[str, WeightSpec] = {
    spec.key: spec
    for spec in (
        WeightSpec(
            "pt_inception",
            "pt_inception-2015-12-05-6726825d.pth",
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
            "FID with the standard TF-ported FID Inception (pytorch-fid), metric fid_ptincv3_*",
        ),
        WeightSpec(
            "inception_v3_tv",
            "inception_v3_google-0cc3c7bd.pth",
            "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
            "FID with torchvision Inception v3 IMAGENET1K_V1 (GFLA/PIDM/CFLD), metric fid_incv3tv_*",
        ),
        WeightSpec(
            "alexnet",
            "alexnet-owt-7be5be79.pth",
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            "LPIPS AlexNet backbone, metric lpips_alex_*",
        ),
        WeightSpec(
            "vgg16",
            "vgg16-397923af.pth",
            "https://download.pytorch.org/models/vgg16-397923af.pth",
            "LPIPS VGG16 backbone, metric lpips_vgg_*",
        ),
        # torch hub's facebookresearch/dinov2 `dinov2_vitl14` (bench/metrics/dinov2.py). The official name
        # carries no sha256 prefix (torch.hub does not check it either) and no published hash is known
        # offline, so resolve() reports this file as unverified until its sha256 is recorded (~1.2 GB).
        WeightSpec(
            "dinov2_vitl14",
            "dinov2_vitl14_pretrain.pth",
            "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
            "FD-DINOv2: DINOv2 ViT-L/14 CLS features, dgm-eval preprocessing",
        ),
    )
}


@dataclass(frozen=True)
class ResolvedWeight:
    spec: WeightSpec
    path: Path
    sha256: str
    verified: bool


def checkpoints_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (torch.hub's cache, honouring TORCH_HOME at call time)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, memoised on (path, size, mtime) because weight files are ~100 MB."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def missing_message(spec: WeightSpec, dest: Path) -> str:
    return (
        f"weight file {spec.filename} ({spec.used_by}) is not at {dest}. Run `pgpis fetch-weights "
        f"{spec.key}` when online, or download {spec.url} and put it at {dest}"
    )


def resolve(key: str, allow_unverified: bool = False) -> ResolvedWeight:
    """Find a weight in the torch cache and verify its sha256 against the prefix in its name.

    Raises :class:`MissingWeightError` naming the file, its URL and its destination when the file
    is absent, or when its hash does not match and ``allow_unverified`` is false.
    """
    spec = WEIGHTS[key]
    dest = checkpoints_dir() / spec.filename
    if not dest.is_file():
        raise MissingWeightError(missing_message(spec, dest))
    digest = sha256_file(dest)
    verified = spec.hash_prefix is not None and digest.startswith(spec.hash_prefix)
    if not verified and not allow_unverified:
        raise MissingWeightError(
            f"{dest}: sha256 {digest[:16]}... does not start with {spec.hash_prefix}, the hash in the official "
            f"file name, so this is not the published {spec.filename}. Delete it and run `pgpis fetch-weights "
            f"{spec.key}` (or download {spec.url}); pass --allow-unverified-weights only for tests with "
            "random-init weights (results are then marked unverified)"
        )
    return ResolvedWeight(spec=spec, path=dest, sha256=digest, verified=verified)


def download(spec: WeightSpec, url: str | None = None, force: bool = False, progress: bool = True) -> Path:
    """Download ``spec`` into the torch cache, verify its hash prefix, and move it into place atomically.

    ``url`` overrides the official URL (a mirror, or a loopback server in tests). A file whose
    sha256 does not match the name's prefix is deleted and reported; nothing is left behind.
    """
    import torch.hub

    from bench.io import atomic_path

    dest = checkpoints_dir() / spec.filename
    if dest.is_file() and not force:
        return dest
    source = url or spec.url
    try:
        with atomic_path(dest) as tmp:
            # torch.hub writes to its own temp file and checks the prefix itself; we check again
            # below because a spec without a prefix would otherwise go unchecked.
            torch.hub.download_url_to_file(source, str(tmp), hash_prefix=None, progress=progress)
            digest = sha256_file(tmp)
            if spec.hash_prefix and not digest.startswith(spec.hash_prefix):
                raise MissingWeightError(
                    f"downloaded {source} has sha256 {digest[:16]}..., not the {spec.hash_prefix} of "
                    f"{spec.filename}; the file was discarded. Check the URL or mirror"
                )
    except MissingWeightError:
        raise
    except Exception as err:  # urllib errors, timeouts, disk errors: all are "could not fetch"
        raise MissingWeightError(
            f"cannot download {source} ({err}); download it by other means and put it at {dest}"
        ) from None
    return dest
