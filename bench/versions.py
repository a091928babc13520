"""Package versions and the git commit, recorded in every manifest and results file.

A number is only reproducible together with the code that made it, so outputs carry the
versions of the libraries that change pixels or scores, the environment lock they were installed
from (``requirements.lock``, see scripts/lock.sh) and the commit of this checkout.
"""

from __future__ import annotations

import hashlib
import platform
import re
import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# Libraries whose version can change a generated image or a score.
TRACKED_PACKAGES: tuple[str, ...] = (
    "pgpis-bench",
    "torch",
    "torchvision",
    "diffusers",
    "accelerate",
    "numpy",
    "pillow",
    "opencv-python-headless",
    "scikit-image",
    "lpips",
    "pytorch-fid",
    "torchmetrics",
    "scipy",
)

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCK_FILE = REPO_ROOT / "requirements.lock"


def package_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """``{distribution: version}`` (``None``: not installed), plus ``lock``: see :func:`lock_record`."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    found["lock"] = lock_record()
    return found


@lru_cache(maxsize=1)
def lock_record(path: Path = LOCK_FILE) -> str | None:
    """``sha256:<hex>`` of the lock file, followed by the packages whose installed version is not the
    locked one (so a result made outside the locked environment says so); ``None`` without a lock."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    text = data.decode("utf-8", errors="replace")
    off = []
    for name, pinned in re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, flags=re.MULTILINE):
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed != pinned:
            off.append(f"{name} {installed or 'missing'}!={pinned}")
    if not off:
        return digest
    more = f" and {len(off) - 10} more" if len(off) > 10 else ""
    return f"{digest} (not as locked: {', '.join(off[:10])}{more})"


@lru_cache(maxsize=1)
def git_hash(repo: Path = REPO_ROOT) -> str | None:
    """The checkout's commit, suffixed ``-dirty`` when tracked files changed; ``None`` outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return f"{commit}-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else commit
