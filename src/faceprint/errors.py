"""Errors raised by faceprint. Every message names the input it is about."""

from __future__ import annotations


class FaceprintError(Exception):
    """Base class: anything faceprint reports to a user as a clean message."""

    code = "error"


class ImageError(FaceprintError):
    """The file is missing, empty, truncated, not an image, or too large."""

    code = "bad_image"


class ImageTooLargeError(ImageError):
    code = "image_too_large"


class NoFaceError(FaceprintError):
    code = "no_face"


class MultipleFacesError(FaceprintError):
    code = "multiple_faces"


class UnknownIdentityError(FaceprintError):
    code = "unknown_identity"


class IdentityExistsError(FaceprintError):
    code = "identity_exists"


class ModelError(FaceprintError):
    code = "model_error"


class VideoError(FaceprintError):
    code = "bad_video"
