"""``faceprint serve``: the REST API and web page over a Recognizer (needs fastapi, uvicorn and
python-multipart)."""

from faceprint.server.app import DEFAULT_MAX_UPLOAD_BYTES, create_app
from faceprint.server.store import ServerStore

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "ServerStore", "create_app"]
