"""Vigil: an open-source child-safety platform.

The package is split into rooms (see docs/architecture.md); lower rooms (`media`, `signals`)
know nothing of the database, the web or the command line.
"""

__version__ = "0.1.0"
