"""In-memory match indexes, one per signal type: exact digests, PDQ and vPDQ.

Pure data structures (numpy), knowing nothing of the database or the web. The pipeline
builds a `MatchIndex` from bank entries, keeps it in step with bank changes, and snapshots it
to a directory for fast restarts. See `docs/index.md` for the design and the exactness
argument of the PDQ index.
"""

from __future__ import annotations

from vigil.index._snapshot import SnapshotError
from vigil.index.exact import ExactIndex
from vigil.index.match import EXACT_SIGNAL_TYPES, SIGNAL_TYPES, IndexMatch, MatchIndex
from vigil.index.pdq import PDQIndex, SearchResult, allocate_radii
from vigil.index.vpdq import VideoHit, VPDQIndex

__all__ = [
    "EXACT_SIGNAL_TYPES",
    "SIGNAL_TYPES",
    "ExactIndex",
    "IndexMatch",
    "MatchIndex",
    "PDQIndex",
    "SearchResult",
    "SnapshotError",
    "VPDQIndex",
    "VideoHit",
    "allocate_radii",
]
