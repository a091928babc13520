"""Per-pair seeds: a generated image depends only on (global seed, pair id).

This makes outputs independent of batch size, of the number of processes and of the order in
which pairs are visited, and lets a resumed run regenerate exactly the missing images.
"""

from __future__ import annotations

import hashlib

import torch


def pair_seed(global_seed: int, pair_id: str) -> int:
    digest = hashlib.sha256(f"{int(global_seed)}:{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def pair_generators(
    global_seed: int, pair_ids: list[str], device: str | torch.device = "cpu"
) -> list[torch.Generator]:
    """One independent ``torch.Generator`` per pair, on ``device``."""
    gens = []
    for pid in pair_ids:
        g = torch.Generator(device=device)
        g.manual_seed(pair_seed(global_seed, pid))
        gens.append(g)
    return gens
