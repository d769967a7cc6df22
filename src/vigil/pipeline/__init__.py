"""Vigil's jobs: hash (this issue), then match, record and act. CLI and API both call these."""
