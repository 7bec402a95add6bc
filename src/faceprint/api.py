"""The verbs: enroll, identify, verify. Every front end (CLI, service, video) goes through here."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceprint.engine import FaceEngine
from faceprint.errors import FaceprintError, MultipleFacesError, NoFaceError
from faceprint.gallery import Gallery
from faceprint.gallery.base import Template
from faceprint.image import LoadedImage, decode_image, load_image
from faceprint.match import DEFAULT_IDENTIFY, DEFAULT_VERIFY, decide, similarity
from faceprint.types import Face, Match

ImageInput = str | os.PathLike[str] | bytes | np.ndarray | LoadedImage

IDENTIFY_THRESHOLD_KEY = "threshold.identify"
VERIFY_THRESHOLD_KEY = "threshold.verify"


def as_image(source: ImageInput, name: str | None = None) -> LoadedImage:
    """Anything image-like -> an upright RGB :class:`LoadedImage`."""
    if isinstance(source, LoadedImage):
        return source
    if isinstance(source, bytes):
        return decode_image(source, name or "<upload>")
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
            raise FaceprintError(
                f"{name or '<array>'}: expected an (H, W, 3) uint8 RGB array, got {arr.dtype} {arr.shape}"
            )
        arr = np.ascontiguousarray(arr[:, :, :3])
        return LoadedImage(arr, hashlib.sha256(arr.tobytes()).hexdigest(), name or "<array>")
    return load_image(source)


@dataclass
class EnrollResult:
    name: str
    added: list[str] = field(default_factory=list)  # sources stored
    skipped: list[str] = field(default_factory=list)  # already enrolled for this person
    errors: list[tuple[str, str]] = field(default_factory=list)  # (source, message)

    def merge(self, other: EnrollResult) -> None:
        self.added += other.added
        self.skipped += other.skipped
        self.errors += other.errors


@dataclass
class VerifyResult:
    same: bool
    score: float
    threshold: float


class Recognizer:
    """A face engine bound to a gallery: enrol people, identify faces, verify pairs."""

    def __init__(self, gallery: Gallery | str | Path | None = None, engine: FaceEngine | None = None) -> None:
        self.gallery = gallery if isinstance(gallery, Gallery) else Gallery(gallery)
        self.engine = engine or FaceEngine()

    @property
    def model(self) -> str:
        return self.engine.info.template_model

    # thresholds ---------------------------------------------------------------------
    @property
    def identify_threshold(self) -> float:
        stored = self.gallery.setting(f"{IDENTIFY_THRESHOLD_KEY}.{self.model}")
        return float(stored["threshold"]) if stored else DEFAULT_IDENTIFY.threshold

    @property
    def verify_threshold(self) -> float:
        stored = self.gallery.setting(f"{VERIFY_THRESHOLD_KEY}.{self.model}")
        return float(stored["threshold"]) if stored else DEFAULT_VERIFY.threshold

    # faces ----------------------------------------------------------------------------
    def faces(self, image: ImageInput) -> list[Face]:
        """Every face in the image, with its template, largest first."""
        return self.engine.analyze(as_image(image).pixels)

    def single_face(self, image: ImageInput, largest: bool = False) -> tuple[LoadedImage, Face]:
        """The one face of a single-person photo (or the largest, if asked)."""
        loaded = as_image(image)
        faces = self.engine.detect(loaded.pixels)
        if not faces:
            raise NoFaceError(f"{loaded.source}: no face found")
        if len(faces) > 1 and not largest:
            raise MultipleFacesError(
                f"{loaded.source}: {len(faces)} faces found where one person was expected "
                "(crop the photo, or use --largest to take the largest face)"
            )
        face = self.engine.embed(loaded.pixels, faces[:1])[0]
        return loaded, face

    # enrolment ------------------------------------------------------------------------
    def enroll(
        self,
        name: str,
        images: Iterable[ImageInput],
        largest: bool = False,
        on_progress: Callable[[str, str | None], None] | None = None,
    ) -> EnrollResult:
        """Add photos of one person. Each photo is stored (or rejected) on its own, so a bad
        file never blocks the rest, and a crash loses at most the photo in hand."""
        result = EnrollResult(name)
        for image in images:
            source = str(image) if isinstance(image, (str, os.PathLike)) else getattr(image, "source", "<image>")
            error: str | None = None
            try:
                loaded = as_image(image)
                if self.gallery.store.has_source(name, loaded.sha256, self.model):
                    result.skipped.append(loaded.source)
                else:
                    _, face = self.single_face(loaded, largest)
                    template = Template(
                        embedding=face.embedding,
                        model=self.model,
                        source=loaded.source,  # type: ignore[arg-type]
                        file_sha256=loaded.sha256,
                        box=face.box,
                        quality=face.score,
                    )
                    if self.gallery.add_templates(name, [template]):
                        result.added.append(loaded.source)
                    else:
                        result.skipped.append(loaded.source)
            except FaceprintError as exc:
                error = str(exc)
                result.errors.append((source, error))
            if on_progress:
                on_progress(source, error)
        return result

    # identification ---------------------------------------------------------------------
    def identify(self, image: ImageInput, top_k: int = 5, threshold: float | None = None) -> list[Match]:
        """Who is each face in the image? ``identity`` is None for an unknown face."""
        faces = self.faces(image)
        return self.identify_faces(faces, top_k, threshold)

    def identify_faces(self, faces: list[Face], top_k: int = 5, threshold: float | None = None) -> list[Match]:
        if not faces:
            return []
        threshold = self.identify_threshold if threshold is None else threshold
        queries = np.stack([f.embedding for f in faces])  # type: ignore[arg-type]
        ranked = self.gallery.search(queries, self.model, top_k)
        return [
            Match(face=f, identity=decide(c, threshold), score=c[0].score if c else -1.0, candidates=c)
            for f, c in zip(faces, ranked)
        ]

    # verification -----------------------------------------------------------------------
    def verify(self, a: ImageInput, b: ImageInput, threshold: float | None = None) -> VerifyResult:
        """Are the (largest) faces in two photos the same person?"""
        _, fa = self.single_face(a, largest=True)
        _, fb = self.single_face(b, largest=True)
        score = float(similarity(fa.embedding, fb.embedding)[0, 0])  # type: ignore[arg-type]
        threshold = self.verify_threshold if threshold is None else threshold
        return VerifyResult(score >= threshold, score, threshold)

    def verify_identity(self, image: ImageInput, name: str, threshold: float | None = None) -> VerifyResult:
        """Is the (largest) face in the photo the enrolled person ``name``?"""
        self.gallery.get_identity(name)  # raises UnknownIdentityError
        _, face = self.single_face(image, largest=True)
        # the same identity-level score as identification, so the same threshold applies
        score = self.gallery.score(face.embedding, name, self.model)  # type: ignore[arg-type]
        threshold = self.identify_threshold if threshold is None else threshold
        return VerifyResult(score >= threshold, score, threshold)
