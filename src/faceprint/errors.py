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


class LowQualityError(FaceprintError):
    """A photo refused at enrolment by the quality gate (blurred, too small, eyes closed, ...)."""

    code = "low_quality"


class UnknownIdentityError(FaceprintError):
    code = "unknown_identity"


class PhotoNotFoundError(FaceprintError):
    code = "photo_not_found"


class IdentityExistsError(FaceprintError):
    code = "identity_exists"


class ModelError(FaceprintError):
    code = "model_error"


class VideoError(FaceprintError):
    code = "bad_video"


class SettingError(FaceprintError):
    """A FACEPRINT_* environment variable (or an option) holds a value outside its range."""

    code = "bad_setting"


class InvalidNameError(FaceprintError):
    """An identity name that breaks the naming rule (faceprint.names)."""

    code = "invalid_name"


class GalleryError(FaceprintError):
    """The gallery cannot be opened, read or written (missing, read-only, corrupt, disk full)."""

    code = "gallery_error"


class ReadOnlyGalleryError(GalleryError):
    code = "gallery_read_only"


class GalleryNotFoundError(GalleryError):
    code = "gallery_not_found"


class GalleryKeyError(GalleryError):
    """An encrypted gallery opened without its key or with another one, or a key given for a gallery
    that holds unencrypted templates."""

    code = "gallery_key"


class ProtectionKeyError(GalleryError):
    """A gallery of protected templates (faceprint.privacy.protect) used without its key or with
    another one, or a protection key given for a gallery that is not protected."""

    code = "protection_key"


class OutputError(FaceprintError):
    """An output path that must not or cannot be written: an input, another output, a
    missing or read-only folder, a folder where a file goes (or the reverse)."""

    code = "bad_output"


class LivenessError(FaceprintError):
    """A request that needs a passed liveness challenge and has none (``liveness_required``), one
    that is unknown, not passed, expired or already used (``liveness_failed``), or one whose face is
    not the uploaded face (``liveness_mismatch``)."""

    code = "liveness_required"

    def __init__(self, message: str, code: str = "liveness_required") -> None:
        super().__init__(message)
        self.code = code
