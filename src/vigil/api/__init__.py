"""The HTTP API (FastAPI): one router per room over the same services as the CLI.

`create_app` builds the application; `vigil serve` runs it under uvicorn (docs/api.md).
"""

from vigil.api.app import create_app

__all__ = ["create_app"]
