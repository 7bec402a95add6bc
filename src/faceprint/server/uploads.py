"""Images in the service: how many are worked on at once, and how uploads become pixels."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fastapi import UploadFile

from faceprint.image import ImageReader, LoadedImage


def upload_name(upload: UploadFile, fallback: str) -> str:
    """The upload's file name for messages: printable, short, never a path."""
    name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable())[:100]
    return name or fallback


@dataclass(frozen=True)
class ImageWork:
    """Decoding and analysing images, shared by every request: hold one of ``slots`` while an image
    is decoded and analysed (it bounds how many are at once); ``reader`` decodes within the app's
    pixel budget, keeping large images reduced to what the detector needs."""

    slots: threading.BoundedSemaphore
    reader: ImageReader

    def read(self, upload: UploadFile, fallback: str) -> LoadedImage:
        upload.file.seek(0)
        return self.reader.decode(upload.file.read(), upload_name(upload, fallback))
