"""faceprint: face recognition end to end.

>>> import faceprint
>>> rec = faceprint.Recognizer("gallery.db")
>>> rec.enroll("obama", ["obama1.jpg", "obama2.jpg"])
>>> [m.identity for m in rec.identify("group.jpg")]
"""

from faceprint.api import EnrollResult, Recognizer, VerifyResult, as_image
from faceprint.engine import FaceEngine
from faceprint.errors import (
    FaceprintError,
    ImageError,
    MultipleFacesError,
    NoFaceError,
    UnknownIdentityError,
)
from faceprint.gallery import Gallery
from faceprint.image import load_image
from faceprint.types import Candidate, Face, Match

__version__ = "0.1.0"

__all__ = [
    "Candidate",
    "EnrollResult",
    "Face",
    "FaceEngine",
    "FaceprintError",
    "Gallery",
    "ImageError",
    "Match",
    "MultipleFacesError",
    "NoFaceError",
    "Recognizer",
    "UnknownIdentityError",
    "VerifyResult",
    "__version__",
    "as_image",
    "load_image",
]
