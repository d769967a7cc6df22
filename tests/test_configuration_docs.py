"""docs/configuration.md documents every setting."""

from __future__ import annotations

from pathlib import Path

from vigil.config import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [
        f"VIGIL_{name.upper()}"
        for name in Settings.model_fields
        if f"| `VIGIL_{name.upper()}` |" not in text
    ]
    assert missing == [], f"add these to the table in {DOC.name}: {missing}"
