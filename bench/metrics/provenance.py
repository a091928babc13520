"""How the scored images were made, copied from the images folder's ``manifest.json``.

A results file then says on its own how its images were generated and how they were scored.
The manifest (``pgpis generate``, docs/architecture.md) keeps the method's own settings under
``settings.method``; the sampler, step count and guidance are looked up there by their usual key
names, whatever the method nests them under. A folder without a manifest (images from another
tool) has provenance ``null``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Key names methods use for the three sampling settings a reader asks first.
SAMPLING_KEYS = {
    "sampler": ("sampler", "scheduler", "scheduler_type", "sampler_name"),
    "steps": ("steps", "num_inference_steps", "num_steps", "sampling_steps"),
    "guidance": ("guidance", "guidance_scale", "guidance_scales", "cfg_scale", "scales"),
}


def _find(obj: Any, keys: tuple[str, ...]) -> Any:
    """The first value under one of ``keys`` in a nested dict (breadth first), else None."""
    queue = [obj]
    while queue:
        node = queue.pop(0)
        if isinstance(node, dict):
            for key in keys:
                if key in node:
                    return node[key]
            queue.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            queue.extend(v for v in node if isinstance(v, dict | list))
    return None


def provenance(manifest: dict[str, Any] | None, images_dir: Path) -> dict[str, Any] | None:
    if manifest is None:
        return None
    from bench.manifest import MANIFEST_NAME, file_sha256

    settings = manifest.get("settings") if isinstance(manifest.get("settings"), dict) else {}
    method = manifest.get("method")
    method_settings = settings.get("method")
    dataset = settings.get("dataset") if isinstance(settings.get("dataset"), dict) else {}
    return {
        "manifest_sha256": file_sha256(images_dir / MANIFEST_NAME),
        "method": method.get("name") if isinstance(method, dict) else method,
        "config": method_settings,
        "checkpoint_sha256": settings.get("checkpoint_sha256"),
        "seed": settings.get("seed"),
        **{name: _find(method_settings, keys) for name, keys in SAMPLING_KEYS.items()},
        "guidance_type": _find(method_settings, ("guidance_type",)),
        "output_size": settings.get("output_size"),
        "split": manifest.get("split", settings.get("split")),
        "dataset_files_sha256": {**dataset, "pairs_sha256": manifest.get("pairs_sha256")},
        "num_pairs": manifest.get("num_pairs"),
        "generation_versions": manifest.get("versions"),
    }
