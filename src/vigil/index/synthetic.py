"""Synthetic PDQ hash sets for tests and benchmarks: random bits only, never real hashes.

Real hash lists hold clusters of near-duplicates (re-encodes, crops and resizes of the same
picture), so the generator draws cluster centres at random and members within a few dozen
bits of their centre, plus singletons.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from vigil.index._bits import PDQ_BYTES

_CHUNK = 1 << 16


def random_pdq(rng: np.random.Generator, count: int) -> NDArray[np.uint8]:
    """`count` uniformly random 256-bit hashes (n x 32 uint8)."""
    return rng.integers(0, 256, size=(count, PDQ_BYTES), dtype=np.uint8)


def perturb(
    rng: np.random.Generator, hashes: NDArray[np.uint8], max_flips: int
) -> NDArray[np.uint8]:
    """Copies of `hashes`, each with between 0 and `max_flips` distinct bits flipped (a
    uniform target per row, the actual count binomial around it, capped at `max_flips`)."""
    if not 0 <= max_flips <= 255:
        raise ValueError("max_flips must be 0-255")
    out = np.array(hashes, dtype=np.uint8, copy=True)
    if max_flips == 0 or not out.shape[0]:
        return out
    for start in range(0, out.shape[0], _CHUNK):
        block = out[start : start + _CHUNK]
        rows = np.arange(block.shape[0])
        target = rng.integers(0, max_flips + 1, size=rows.size)
        while rows.size:
            limit = (target[rows] * 256).astype(np.uint16)[:, None]
            draws = rng.integers(0, 65536, size=(rows.size, 256), dtype=np.uint16)
            flips = draws < limit
            good = flips.sum(axis=1) <= max_flips
            block[rows[good]] ^= np.packbits(flips[good], axis=1)
            rows = rows[~good]
    return out


def flip_exactly(
    rng: np.random.Generator, hashes: NDArray[np.uint8], counts: NDArray[np.integer] | int
) -> NDArray[np.uint8]:
    """Copies of `hashes` with exactly `counts[i]` distinct bits flipped (for small sets)."""
    out = np.array(hashes, dtype=np.uint8, copy=True)
    flips = np.broadcast_to(np.asarray(counts), (out.shape[0],))
    for row, count in enumerate(flips.tolist()):
        bits = np.zeros(256, dtype=np.uint8)
        bits[rng.choice(256, size=count, replace=False)] = 1
        out[row] ^= np.packbits(bits)
    return out


def clustered_pdq(
    rng: np.random.Generator,
    count: int,
    *,
    singleton_share: float = 0.5,
    mean_cluster_size: float = 4.0,
    max_flips: int = 40,
    large_clusters: int = 0,
    large_cluster_size: int = 500,
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """`count` hashes: singletons, geometric-size clusters and `large_clusters` clusters of
    `large_cluster_size` (a viral picture's many copies), members within `max_flips` bits of
    their random centre. Returns (hashes in random order, cluster number of each; -1 for a
    singleton)."""
    large = min(count, large_clusters * large_cluster_size)
    sizes: list[int] = []
    if large_clusters > 0:
        base, extra = divmod(large, large_clusters)
        sizes = [s for s in (base + (i < extra) for i in range(large_clusters)) if s]
    singles = int((count - large) * singleton_share)
    clustered = count - large - singles
    drawn = 0
    geometric = rng.geometric(1.0 / max(mean_cluster_size, 1.0), size=max(1, clustered))
    for size in geometric.tolist():
        if drawn >= clustered:
            break
        size = min(int(size), clustered - drawn)
        sizes.append(size)
        drawn += size
    cluster_of = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    centres = random_pdq(rng, len(sizes))
    members = perturb(rng, centres[cluster_of], max_flips)
    hashes = np.concatenate([members, random_pdq(rng, count - members.shape[0])])
    owners = np.concatenate([cluster_of, np.full(count - members.shape[0], -1, np.int64)])
    order = rng.permutation(count)
    return hashes[order], owners[order]
