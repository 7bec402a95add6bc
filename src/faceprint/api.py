"""The verbs: enroll, identify, verify. Every front end (CLI, service, video) goes through here."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceprint.analyze import AnalyzerSpec, FaceAnalyzer
from faceprint.analyze.quality import DEFAULT_MIN_QUALITY, quality_gate
from faceprint.engine import FaceEngine
from faceprint.errors import FaceprintError, GalleryError, LowQualityError, MultipleFacesError, UnknownIdentityError
from faceprint.gallery import Gallery
from faceprint.gallery.base import Template
from faceprint.image import ImageInput, LoadedImage, as_image, content_sha256
from faceprint.match import DEFAULT_IDENTIFY, DEFAULT_VERIFY, decide, similarity
from faceprint.names import validate_name
from faceprint.pipeline import EngineSpec, ImageResult, Mode, analyze_images, image_faces, source_name
from faceprint.subject import SubjectChoice, choose_subject
from faceprint.types import Face, Match

IDENTIFY_THRESHOLD_KEY = "threshold.identify"
#: what the enrolment quality gate measures: dense landmarks and quality, no expression
GATE_ANALYZER = AnalyzerSpec(expression="none", face_like=False)


def stored_source(image: ImageInput, source: str) -> str:
    """What the gallery records as a photo's source: an absolute path for a file (so that thumbnails
    and listings work from any working directory), else the given name."""
    return os.path.abspath(image) if isinstance(image, (str, os.PathLike)) else source


VERIFY_THRESHOLD_KEY = "threshold.verify"


@dataclass
class EnrollResult:
    name: str
    added: list[str] = field(default_factory=list)  # sources stored
    skipped: list[str] = field(default_factory=list)  # already enrolled for this person
    errors: list[tuple[str, str]] = field(default_factory=list)  # (source, message)
    #: photos never looked at because the gallery failed (disk full, damaged file) mid-batch
    not_attempted: list[str] = field(default_factory=list)
    #: (source, face box, why) for each photo with several faces whose subject was chosen
    chosen: list[tuple[str, tuple[int, int, int, int], str]] = field(default_factory=list)

    def merge(self, other: EnrollResult) -> None:
        self.added += other.added
        self.skipped += other.skipped
        self.errors += other.errors
        self.not_attempted += other.not_attempted
        self.chosen += other.chosen


@dataclass
class VerifyResult:
    same: bool
    score: float
    threshold: float
    #: set when a photo had several faces: which one was compared
    note: str | None = None


@dataclass
class PairResult:
    """One pair of :func:`verify_pairs`: the result, or the error of the image that failed."""

    a: str
    b: str
    result: VerifyResult | None
    error: str | None = None
    exception: FaceprintError | None = None


def verify_pairs(
    engine: FaceEngine,
    pairs: Iterable[tuple[ImageInput, ImageInput]],
    threshold: float,
    workers: int = 1,
    on_progress: Callable[[str, str | None], None] | None = None,
) -> list[PairResult]:
    """Compare the largest face of each pair's two photos. Every distinct photo is read and embedded
    once (``workers`` processes), however many pairs it is in; a bad photo fails its pairs only."""
    pairs = list(pairs)
    keys = [(_key(a), _key(b)) for a, b in pairs]
    unique: dict[object, ImageInput] = {}
    for (a, b), (ka, kb) in zip(pairs, keys):
        unique.setdefault(ka, a)
        unique.setdefault(kb, b)
    found: dict[object, ImageResult] = {}
    outputs = analyze_images(unique.values(), engine, EngineSpec.of(engine), "largest", workers)
    for key, out in zip(unique, outputs):
        found[key] = out
        if on_progress:
            on_progress(out.source, out.error)
    results: list[PairResult] = []
    for ka, kb in keys:
        a, b = found[ka], found[kb]
        failed = a if a.error is not None else b if b.error is not None else None
        if failed is not None:
            results.append(PairResult(a.source, b.source, None, failed.error, failed.exception))
            continue
        score = float(similarity(a.faces[0].embedding, b.faces[0].embedding)[0, 0])  # type: ignore[arg-type]
        crowded = [f"{r.source} has {r.found} faces" for r in (a, b) if r.found > 1]
        note = "; ".join(crowded) + ": compared the largest" if crowded else None
        results.append(PairResult(a.source, b.source, VerifyResult(score >= threshold, score, threshold, note)))
    return results


def _key(image: ImageInput) -> object:
    """Identity of an input for de-duplication: a path by name, anything else by object."""
    return os.path.abspath(image) if isinstance(image, (str, os.PathLike)) else id(image)


class Recognizer:
    """A face engine bound to a gallery: enrol people, identify faces, verify pairs."""

    def __init__(self, gallery: Gallery | str | Path | None = None, engine: FaceEngine | None = None) -> None:
        self.gallery = gallery if isinstance(gallery, Gallery) else Gallery(gallery)
        self.engine = engine or FaceEngine()
        self._gate_analyzer: FaceAnalyzer | None = None
        self._min_quality = DEFAULT_MIN_QUALITY

    @property
    def model(self) -> str:
        return self.engine.info.template_model

    def model_mismatch(self) -> str | None:
        """Why a gallery with people would find nobody: its templates were made with another model
        setting than this engine's (None when the engine's model has templates, or there are none)."""
        if self.gallery.store.identity_count(self.model) > 0:
            return None
        others = self.gallery.store.models()
        if not others:
            return None
        hint = ""
        if all(m.endswith("+flip") for m in others) and not self.model.endswith("+flip"):
            hint = " (drop --no-flip)"
        elif self.model.endswith("+flip") and all(m == self.model.removesuffix("+flip") for m in others):
            hint = " (add --no-flip)"
        return (
            f"the gallery's templates were made with model {', '.join(others)}, but the current settings "
            f"make {self.model}: their scores cannot be compared{hint}"
        )

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

    @property
    def gate_analyzer(self) -> FaceAnalyzer:
        """The analyser behind the enrolment quality gate (landmarks and quality only), loaded once."""
        if self._gate_analyzer is None:
            self._gate_analyzer = GATE_ANALYZER.build()
        return self._gate_analyzer

    def check_quality(self, pixels: np.ndarray, face: Face, min_quality: float = DEFAULT_MIN_QUALITY) -> None:
        """Raise :class:`LowQualityError` with the reason when ``face`` of ``pixels`` is below the
        enrolment quality gate (0 turns it off)."""
        if min_quality <= 0:
            return
        analysed = face if face.analysis is not None else self.gate_analyzer.analyze(pixels, [face])[0]
        refusal = quality_gate(analysed.analysis, min_quality)  # type: ignore[arg-type]
        if refusal is not None:
            raise LowQualityError(f"photo refused: {refusal}")

    def subject_face(
        self, name: str, image: ImageInput, largest: bool = False
    ) -> tuple[LoadedImage, Face, SubjectChoice]:
        """The face of ``image`` to enrol as ``name``: the only one, the subject chosen against the
        person's enrolled photos (:mod:`faceprint.subject`), or the largest if asked; raises
        NoFaceError, or MultipleFacesError when the subject is ambiguous."""
        loaded = as_image(image)
        if largest:
            return loaded, image_faces(self.engine, loaded, "largest")[0], SubjectChoice(0, "largest face (asked for)")
        faces = image_faces(self.engine, loaded, "subject")
        height, width = loaded.pixels.shape[:2]
        choice = choose_subject(faces, (width, height), self._references(name), (), loaded.source)
        return loaded, faces[choice.index], choice

    # enrolment ------------------------------------------------------------------------
    def enroll(
        self,
        name: str,
        images: Iterable[ImageInput],
        largest: bool = False,
        on_progress: Callable[[str, str | None], None] | None = None,
        workers: int = 1,
        min_quality: float = DEFAULT_MIN_QUALITY,
    ) -> EnrollResult:
        """Add photos of one person. Each photo is stored (or rejected) on its own, so a bad
        file never blocks the rest, and a crash loses at most the photo in hand."""
        return self.enroll_many([(name, images)], largest, on_progress, workers, min_quality)[0]

    def enroll_many(
        self,
        jobs: Iterable[tuple[str, Iterable[ImageInput]]],
        largest: bool = False,
        on_progress: Callable[[str, str | None], None] | None = None,
        workers: int = 1,
        min_quality: float = DEFAULT_MIN_QUALITY,
    ) -> list[EnrollResult]:
        """Enrol several people in one pass over all their photos (``workers`` processes).

        A face below ``min_quality`` (:func:`faceprint.analyze.quality_gate`: blurred, too small,
        eyes closed, turned away, ...) is refused with the reason; 0 turns the gate off.

        Every name is checked first (InvalidNameError before any photo is read). A gallery failure
        (disk full, read-only, damaged file) stops the batch: the photo in hand gets the error, the
        rest are listed in ``not_attempted``, and what was stored before stays stored."""
        jobs = [(validate_name(name), images) for name, images in jobs]
        self.gallery.check_protection_key()
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
        mode: Mode = "largest" if largest else "subject"
        self._min_quality = min_quality
        photos = (image for _, image in todo)
        if min_quality > 0:  # the gate needs the dense landmarks, measured where the pixels are
            from faceprint.analyze import analyze_files

            specs = (EngineSpec.of(self.engine), GATE_ANALYZER)
            outputs = analyze_files(photos, self.engine, self.gate_analyzer, specs, mode, workers)
        else:
            outputs = analyze_images(photos, self.engine, EngineSpec.of(self.engine), mode, workers)
        done = 0
        # a person's group photos wait until their other photos are in: those tell which face is theirs
        waiting: list[tuple[EnrollResult, ImageInput, ImageResult]] = []
        try:
            for (result, image), out in zip(todo, outputs):
                if waiting and waiting[0][0] is not result:
                    self._settle(waiting)
                done += 1
                if on_progress:
                    on_progress(out.source, out.error)
                if out.error is not None:
                    result.errors.append((out.source, out.error))
                elif len(out.faces) > 1:
                    waiting.append((result, image, out))
                else:
                    self._store_photo(result, image, out, out.faces[0])
            self._settle(waiting)
        except GalleryError as exc:
            # _store_photo recorded it on the photo in hand; a failed read has no photo of its own
            if not any(str(exc) == m for r in results for _, m in r.errors):
                (waiting[0][0] if waiting else results[-1]).errors.append((str(self.gallery.store.path), str(exc)))
        finally:
            outputs.close()  # stops the worker processes when the loop ends early
        for result, image in [(r, i) for r, i, _ in waiting] + todo[done:]:
            result.not_attempted.append(source_name(image))
        return results

    def _store_photo(self, result: EnrollResult, image: ImageInput, out: ImageResult, face: Face) -> None:
        """Store one photo's chosen face; a gallery failure is recorded and raised (it ends the batch)."""
        refusal = quality_gate(face.analysis, self._min_quality) if face.analysis is not None else None
        if refusal is not None:
            result.errors.append((out.source, f"{out.source}: photo refused: {refusal}"))
            return
        try:
            stored = self.store_face(result.name, face, stored_source(image, out.source), out.sha256)  # type: ignore[arg-type]
        except GalleryError as exc:
            result.errors.append((out.source, str(exc)))
            raise
        except FaceprintError as exc:
            result.errors.append((out.source, str(exc)))
        else:
            (result.added if stored else result.skipped).append(out.source)

    def _references(self, name: str) -> np.ndarray | None:
        """The person's stored templates of this engine's model (None for a new person)."""
        try:
            vectors = [t.embedding for t in self.gallery.templates(name) if t.model == self.model]
        except UnknownIdentityError:
            return None
        # a protected gallery's templates back in the engine's space, where the new faces are
        return self.gallery.unprotected(np.stack(vectors)) if vectors else None

    def _settle(self, waiting: list[tuple[EnrollResult, ImageInput, ImageResult]]) -> None:
        """Choose and store the subject of each waiting group photo of one person (then empties the list)."""
        if not waiting:
            return
        references = self._references(waiting[0][0].name)
        candidates = [np.stack([f.embedding for f in out.faces]) for _, _, out in waiting]  # type: ignore[misc]
        for k in range(len(candidates)):
            result, image, out = waiting.pop(0)  # what is left is what a gallery failure leaves undone
            others = [c for j, c in enumerate(candidates) if j != k]
            try:
                choice = choose_subject(out.faces, out.size or (0, 0), references, others, out.source)
            except MultipleFacesError as exc:
                result.errors.append((out.source, str(exc)))
                continue
            face = out.faces[choice.index]
            result.chosen.append((out.source, face.box, f"{choice.reason} ({choice.detail})"))
            self._store_photo(result, image, out, face)

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
        self,
        images: Iterable[ImageInput],
        top_k: int = 5,
        threshold: float | None = None,
        workers: int = 1,
        analysis: AnalyzerSpec | None = None,
    ) -> Iterator[tuple[ImageResult, list[Match]]]:
        """:meth:`identify` over many images (``workers`` processes), in input order; a bad
        image yields its error in ``ImageResult.error`` and no matches. With ``analysis``, each
        face also carries its ``analysis`` (e.g. its quality)."""
        self.gallery.check_protection_key()
        outputs = analyze_images(images, self.engine, EngineSpec.of(self.engine), "all", workers, analysis=analysis)
        for out in outputs:
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
        threshold = self.verify_threshold if threshold is None else threshold
        (pair,) = verify_pairs(self.engine, [(a, b)], threshold)
        if pair.error is not None:
            raise pair.exception or FaceprintError(pair.error)
        return pair.result  # type: ignore[return-value]

    def verify_identity(self, image: ImageInput, name: str, threshold: float | None = None) -> VerifyResult:
        """Is the (largest) face in the photo the enrolled person ``name``?"""
        self.gallery.get_identity(name)  # raises UnknownIdentityError
        _, face = self.single_face(image, largest=True)
        # the same identity-level score as identification, so the same threshold applies
        score = self.gallery.score(face.embedding, name, self.model)  # type: ignore[arg-type]
        threshold = self.identify_threshold if threshold is None else threshold
        return VerifyResult(score >= threshold, score, threshold)
