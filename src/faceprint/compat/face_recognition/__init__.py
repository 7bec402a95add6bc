"""face_recognition 1.3.0, answered by faceprint: ``import faceprint.compat.face_recognition as face_recognition``.

The same functions with the same arguments and the same answers (dlib's own detectors and landmarks,
dlib's descriptors computed by faceprint's ONNX port), faster. The submodules are the original's:
``api`` (with the helpers its tests use, such as ``_raw_face_locations``), and the commands
``face_recognition_cli`` and ``face_detection_cli`` (click, imported only when used).
The original package is not needed.
"""

from faceprint.compat.face_recognition.api import (
    batch_face_locations,
    compare_faces,
    face_distance,
    face_encodings,
    face_landmarks,
    face_locations,
    load_image_file,
)

#: the face_recognition release whose API this is (that release's own module says "1.2.3")
__version__ = "1.3.0"

__all__ = [
    "batch_face_locations",
    "compare_faces",
    "face_distance",
    "face_encodings",
    "face_landmarks",
    "face_locations",
    "load_image_file",
]
