"""Results name the environment lock they were made with (bench.versions.lock_record)."""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from pathlib import Path

from bench.versions import LOCK_FILE, lock_record, package_versions


def test_lock_record_is_the_files_sha256_and_names_packages_not_installed_as_locked(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"numpy=={version('numpy')} \\\n    --hash=sha256:00\npyyaml=={version('pyyaml')}\n")
    digest = "sha256:" + hashlib.sha256(lock.read_bytes()).hexdigest()
    assert lock_record.__wrapped__(lock) == digest
    lock.write_text("numpy==0.0.1\nno-such-package-pgpis==1.0\n")
    digest = "sha256:" + hashlib.sha256(lock.read_bytes()).hexdigest()
    assert lock_record.__wrapped__(lock) == (
        f"{digest} (not as locked: numpy {version('numpy')}!=0.0.1, no-such-package-pgpis missing!=1.0)"
    )
    assert lock_record.__wrapped__(tmp_path / "absent.lock") is None


def test_recorded_versions_carry_the_checkouts_lock() -> None:
    recorded = package_versions()["lock"]
    assert recorded.startswith("sha256:" + hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest())
