"""The verbs: enroll, identify, verify. Every front end (CLI, service, video) goes through here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceprint.engine import FaceEngine
from faceprint.errors import FaceprintError
from faceprint.gallery import Gallery
from faceprint.gallery.base import Template
from faceprint.image import ImageInput, LoadedImage, as_image, content_sha256
from faceprint.match import DEFAULT_IDENTIFY, DEFAULT_VERIFY, decide, similarity
from faceprint.pipeline import EngineSpec, ImageResult, Mode, analyze_images, image_faces, source_name
from faceprint.types import Face, Match

IDENTIFY_THRESHOLD_KEY = "threshold.identify"
VERIFY_THRESHOLD_KEY = "threshold.verify"


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
        return loaded, image_faces(self.engine, loaded, "largest" if largest else "single")[0]

    # enrolment ------------------------------------------------------------------------
    def enroll(
        self,
        name: str,
        images: Iterable[ImageInput],
        largest: bool = False,
        on_progress: Callable[[str, str | None], None] | None = None,
        workers: int = 1,
    ) -> EnrollResult:
        """Add photos of one person. Each photo is stored (or rejected) on its own, so a bad
        file never blocks the rest, and a crash loses at most the photo in hand."""
        return self.enroll_many([(name, images)], largest, on_progress, workers)[0]

    def enroll_many(
        self,
        jobs: Iterable[tuple[str, Iterable[ImageInput]]],
        largest: bool = False,
        on_progress: Callable[[str, str | None], None] | None = None,
        workers: int = 1,
    ) -> list[EnrollResult]:
        """Enrol several people in one pass over all their photos (``workers`` processes)."""
        results: list[EnrollResult] = []
        todo: list[tuple[EnrollResult, ImageInput]] = []
        for name, images in jobs:
            result = EnrollResult(name)
            results.append(result)
            for image in images:
                # photos already stored for this person are skipped before any model runs
                sha = content_sha256(image)
                if sha is not None and self.gallery.store.has_source(name, sha, self.model):
                    result.skipped.append(source_name(image))
                    if on_progress:
                        on_progress(source_name(image), None)
                else:
                    todo.append((result, image))
        mode: Mode = "largest" if largest else "single"
        outputs = analyze_images((image for _, image in todo), self.engine, EngineSpec.of(self.engine), mode, workers)
        for (result, _), out in zip(todo, outputs):
            if out.error is not None:
                result.errors.append((out.source, out.error))
            else:
                try:
                    stored = self.store_face(result.name, out.faces[0], out.source, out.sha256)  # type: ignore[arg-type]
                except FaceprintError as exc:
                    result.errors.append((out.source, str(exc)))
                else:
                    (result.added if stored else result.skipped).append(out.source)
            if on_progress:
                on_progress(out.source, out.error)
        return results

    def store_face(self, name: str, face: Face, source: str, file_sha256: str, create: bool = True) -> bool:
        """Store one embedded face as a template of ``name``; False if that photo was already
        stored for that person (the gallery keys on identity, file hash, box and model)."""
        template = Template(
            embedding=face.embedding,  # type: ignore[arg-type]
            model=self.model,
            source=source,
            file_sha256=file_sha256,
            box=face.box,
            quality=face.score,
        )
        return bool(self.gallery.add_templates(name, [template], create=create))

    # identification ---------------------------------------------------------------------
    def identify(self, image: ImageInput, top_k: int = 5, threshold: float | None = None) -> list[Match]:
        """Who is each face in the image? ``identity`` is None for an unknown face."""
        return self.identify_faces(self.faces(image), top_k, threshold)

    def identify_many(
        self, images: Iterable[ImageInput], top_k: int = 5, threshold: float | None = None, workers: int = 1
    ) -> Iterator[tuple[ImageResult, list[Match]]]:
        """:meth:`identify` over many images (``workers`` processes), in input order; a bad
        image yields its error in ``ImageResult.error`` and no matches."""
        for out in analyze_images(images, self.engine, EngineSpec.of(self.engine), "all", workers):
            yield out, self.identify_faces(out.faces, top_k, threshold)

    def identify_faces(self, faces: list[Face], top_k: int = 5, threshold: float | None = None) -> list[Match]:
        """Identify faces that already carry templates."""
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
