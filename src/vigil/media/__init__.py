"""Safe decoding of files from outside: limits, format sniffing, images and video frames.

Knows nothing of the database or the web; every failure is a `MediaError` with a code.
"""

from vigil.media.errors import ErrorCode, MediaError
from vigil.media.sniff import MediaType
from vigil.media.source import MediaFile, open_media

__all__ = ["ErrorCode", "MediaError", "MediaFile", "MediaType", "open_media"]
