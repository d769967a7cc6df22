"""Where the shared test material lives: `../shared` beside the repository root.

`../shared` (conformance images and videos, the photo set) is present for every developer and
CI run but not in a user's fresh clone, so tests that need it skip, loudly, when it is absent.
Import as `from shared_data import SHARED, require_shared` (pytest puts `tests/` on the path).
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT: Path = Path(__file__).resolve().parents[1]
SHARED: Path = REPO_ROOT.parent / "shared"


def shared_missing_reason(path: Path = SHARED) -> str:
    """The skip message for a missing `path` inside (or being) the shared folder."""
    return (
        f"shared test material not found at {path} (expected `../shared` beside the "
        f"repository root {REPO_ROOT}); conformance tests run only where it is present"
    )


def require_shared(*parts: str) -> Path:
    """`SHARED / parts`, or skip the calling test (or module, at import) when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(shared_missing_reason(path), allow_module_level=True)
    return path
