"""Package versions and the git commit, recorded in every manifest and results file.

A number is only reproducible together with the code that made it, so outputs carry the
versions of the libraries that change pixels or scores and the commit of this checkout.
"""

from __future__ import annotations

import platform
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


def package_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """``{distribution: version}``; ``None`` for a package that is not installed."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


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


def versions_record() -> dict[str, object]:
    """What manifests and metrics files store under ``versions`` (plus ``git``)."""
    return {**package_versions(), "git": git_hash()}
