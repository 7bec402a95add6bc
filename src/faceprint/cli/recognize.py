"""Commands that recognise faces in photos: identify, verify (one pair or a CSV of pairs), detect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from faceprint.cli.common import (
    ThresholdOption,
    emit,
    err,
    fail,
    image_files,
    out,
    progress_bar,
    report_failures,
    report_images,
    state,
)
from faceprint.errors import FaceprintError

if TYPE_CHECKING:
    from faceprint.types import Face, Match


# ------------------------------------------------------------------------------ identify
def identify(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Candidates per face.")] = 3,
    threshold: Annotated[float | None, ThresholdOption] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image per line.")] = False,
    annotate: Annotated[
        Path | None,
        typer.Option("--annotate", help="Write each photo with boxes and names drawn into this folder."),
    ] = None,
    crops: Annotated[
        Path | None,
        typer.Option("--crops", help="Write each face as DIR/<identity or unknown>/<photo>-face<k>.jpg."),
    ] = None,
    encrypted: Annotated[
        bool,
        typer.Option(
            "--encrypted",
            help="Match encrypted templates (CKKS): the gallery side scores each face without seeing its template "
            "or the scores; this side decrypts, ranks and decides. Needs faceprint[privacy].",
        ),
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="With --encrypted: the gallery is the faceprint service at this URL (only ciphertexts are sent).",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="FACEPRINT_API_KEY", help="The service's API key (read role), for --server."),
    ] = None,
    encrypted_gallery: Annotated[
        Path | None,
        typer.Option(
            "--encrypted-gallery",
            help="With --encrypted and --holder-key: match against this gallery of ciphertexts "
            "('gallery export-encrypted') instead of a gallery of templates.",
        ),
    ] = None,
    holder_key: Annotated[
        Path | None,
        typer.Option("--holder-key", help="The key holder's file written with --encrypted-gallery's ciphertexts."),
    ] = None,
    liveness: Annotated[
        bool,
        typer.Option(
            "--liveness",
            help="Also score each face with the passive liveness model (MiniFASNet): 'live' and 'live_score' "
            "per face (a photo has no motion: see 'faceprint liveness' for videos).",
        ),
    ] = False,
) -> None:
    """Who is in these photos? Each face gets a name or 'unknown'."""
    from faceprint.fileio import check_outputs
    from faceprint.outputs import PhotoOutputs

    if server is not None and not encrypted:
        raise fail("--server needs --encrypted (plaintext identification runs on a local gallery)", 2)
    if (encrypted_gallery is None) != (holder_key is None) or (encrypted_gallery and (not encrypted or server)):
        raise fail("--encrypted-gallery and --holder-key go together, with --encrypted and without --server", 2)
    files, empty = image_files(paths)
    try:
        check_outputs(files, {"--annotate": annotate, "--crops": crops}, folders=("--annotate", "--crops"))
        outputs = PhotoOutputs(annotate, crops)
    except (FaceprintError, OSError) as exc:
        raise fail(str(exc), 2) from None
    if server is not None or encrypted_gallery is not None:
        if server is not None:
            identifier, rec = _remote_identifier(server, api_key), None
        else:
            identifier, rec = _stored_identifier(encrypted_gallery, holder_key), None  # type: ignore[arg-type]
        if identifier.info.identities == 0:
            what = "service" if server is not None else "encrypted gallery"
            err.print(f"[yellow]warning:[/yellow] the {what} has no people enrolled: every face will be unknown")
    else:
        rec = state.recognizer()
        mismatch = rec.model_mismatch()
        if mismatch:
            raise fail(mismatch, 2)
        if rec.gallery.store.identity_count(rec.model) == 0:
            err.print("[yellow]warning:[/yellow] the gallery has no people enrolled: every face will be unknown")
        identifier = _local_identifier(rec) if encrypted else None

    def record(m: Match, live: float | None = None) -> dict[str, Any]:
        fields = {
            "box": list(m.face.box),
            "identity": m.identity,
            "score": round(m.score, 4),
            "candidates": [{"identity": c.identity, "score": round(c.score, 4)} for c in m.candidates],
            "quality": None if m.face.analysis is None else round(m.face.analysis.quality, 4),
        }
        if live is not None:
            from faceprint.liveness.decide import photo_fields

            fields.update(photo_fields(live))
        return fields

    def written(source: str, matches: list[Match], error: str | None) -> str | None:
        """The image's error, or that of writing its --annotate/--crops files."""
        if error is None and outputs.enabled:
            try:
                outputs.write(source, matches)
            except (FaceprintError, OSError) as exc:
                return f"{source}: cannot write its outputs: {exc}"
        return error

    results = (
        _identified(rec, files, top_k, threshold)
        if identifier is None
        else _identified_encrypted(identifier, files, top_k, threshold)
    )
    scored = _with_liveness(results) if liveness else ((r, matches, [None] * len(matches)) for r, matches in results)
    report_images(
        (
            (r.source, [record(m, live) for m, live in zip(matches, lives)], written(r.source, matches, r.error))
            for r, matches, lives in scored
        ),
        len(files),
        "identifying",
        as_json,
        _print_identified,
        empty,
    )


def _with_liveness(results: Iterator[tuple[Any, list[Match]]]) -> Iterator[tuple[Any, list[Match], list[float | None]]]:
    """Each image's matches with each face's passive live score (the photo is read again here: the
    workers that found the faces keep no pixels)."""
    from faceprint.image import load_image
    from faceprint.liveness import PassiveLiveness

    model = PassiveLiveness()
    for result, matches in results:
        if result.error is not None or not matches:
            yield result, matches, [None] * len(matches)
            continue
        try:
            pixels = load_image(result.source).pixels
        except FaceprintError:  # gone since: the faces stand without a live score
            yield result, matches, [None] * len(matches)
            continue
        scores = model.score_many([(pixels, m.face.box) for m in matches], rgb=True)
        yield result, matches, [float(s) for s in scores]


def _identified(rec: Any, files: list[Path], top_k: int, threshold: float | None) -> Iterator[tuple[Any, list[Match]]]:
    """(image result, matches) per file, each face also carrying its quality."""
    return rec.identify_many(files, top_k, threshold, workers=state.n_workers(len(files)), analysis=_quality_spec())


def _quality_spec() -> Any:
    """What identify measures of each face besides matching it: quality (faceprint.analyze: no
    expression, about 3 ms a face more)."""
    from faceprint.analyze import AnalyzerSpec

    return AnalyzerSpec(expression="none", face_like=False)


def _local_identifier(rec: Any) -> Any:
    """Both halves of encrypted identification in this process, over the local gallery."""
    from faceprint.privacy.encrypted import EncryptedIdentifier, GallerySide, LocalRemote

    try:
        return EncryptedIdentifier(LocalRemote(GallerySide(rec.gallery, rec.model), rec.identify_threshold))
    except FaceprintError as exc:
        raise fail(str(exc)) from None


def _remote_identifier(url: str, api_key: str | None) -> Any:
    """The client half; the gallery half is the service at ``url`` (its model must be this engine's)."""
    from urllib.parse import urlsplit

    from faceprint.privacy.encrypted import EncryptedIdentifier, HttpRemote

    if urlsplit(url).scheme not in ("http", "https"):
        raise fail(f"--server {url}: give the service's http:// or https:// URL", 2)
    model = state.engine().info.template_model
    try:
        identifier = EncryptedIdentifier(HttpRemote(url, model, api_key))
        served = identifier.info.model
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    if served != model:
        raise fail(f"the service's gallery holds model {served}, but the current settings make {model}", 2)
    return identifier


def _stored_identifier(gallery: Path, holder_key: Path) -> Any:
    """The key holder's half; the gallery half holds only ciphertexts (faceprint.privacy.encrypted_gallery)."""
    try:
        from faceprint.privacy.encrypted_gallery import EncryptedGallery, KeyHolder

        identifier = KeyHolder.load(holder_key).identifier(EncryptedGallery.load(gallery))
    except FaceprintError as exc:
        raise fail(str(exc), 2) from None
    model = state.engine().info.template_model
    if identifier.info.model != model:
        raise fail(f"{gallery}: holds model {identifier.info.model}, but the current settings make {model}", 2)
    return identifier


def _identified_encrypted(
    identifier: Any, files: list[Path], top_k: int, threshold: float | None
) -> Iterator[tuple[Any, list[Match]]]:
    """As :func:`_identified`, each face matched through ``identifier`` (an image whose query fails
    gets the error; the batch goes on)."""
    from dataclasses import replace

    from faceprint.pipeline import EngineSpec, analyze_images

    engine = state.engine()
    workers = state.n_workers(len(files))
    for result in analyze_images(files, engine, EngineSpec.of(engine), "all", workers, analysis=_quality_spec()):
        if result.error is not None:
            yield result, []
            continue
        try:
            yield result, identifier.identify_faces(result.faces, top_k, threshold)
        except FaceprintError as exc:
            yield replace(result, error=f"{result.source}: encrypted identification failed: {exc}"), []


def _print_identified(record: dict[str, Any]) -> None:
    faces = record["faces"]
    if not faces:
        out.print(f"{record['image']}: no faces")
        return
    labels = []
    for face in faces:
        who = face["identity"] or "unknown"
        best = face["candidates"][0] if face["candidates"] else None
        hint = f", nearest {best['identity']} {best['score']:.3f}" if face["identity"] is None and best else ""
        live = "" if "live" not in face else f", {'live' if face['live'] else 'NOT live'} {face['live_score']:.2f}"
        labels.append(f"{who} ({face['score']:.3f}{hint}{live}) at {tuple(face['box'])}")
    out.print(f"{record['image']}: " + "; ".join(labels))


# -------------------------------------------------------------------------------- verify
def verify(
    a: Annotated[Path | None, typer.Argument(help="First image.")] = None,
    b: Annotated[Path | None, typer.Argument(help="Second image (or use --identity).")] = None,
    identity: Annotated[
        str | None, typer.Option("--identity", "-i", help="Compare A with this enrolled person.")
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs",
            help="A CSV of image pairs (two columns of paths, relative to the CSV's folder or absolute; an "
            "optional third column with the truth: yes/no, same/different, 1/0); one result per pair.",
        ),
    ] = None,
    threshold: Annotated[float | None, ThresholdOption] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per pair with --pairs).")] = False,
) -> None:
    """Are two photos (or a photo and an enrolled person) the same person? Exit 0 if same, 3 if not.
    With --pairs: every pair of a CSV file, each photo read once; exit 1 if any pair failed."""
    if pairs is not None:
        if a is not None or b is not None or identity is not None:
            raise fail("--pairs takes no images and no --identity", 2)
        _verify_pairs(pairs, threshold, as_json)
        return
    if a is None or (b is None) == (identity is None):
        raise fail("give an image A and either a second image B or --identity NAME (or --pairs FILE)", 2)
    try:
        if identity is not None:
            rec = state.recognizer()
            mismatch = rec.model_mismatch()
            if mismatch:
                raise FaceprintError(mismatch)
            result = rec.verify_identity(a, identity, threshold)
        else:
            result = _pair_results([(a, b)], threshold, workers=1)[0]  # type: ignore[list-item]
            if result.error is not None:
                raise FaceprintError(result.error)
            result = result.result
    except FaceprintError as exc:
        if as_json:
            emit({"same": None, "score": None, "threshold": threshold, "note": None, "error": str(exc)})
        raise fail(str(exc)) from None
    if result.note:
        err.print(f"[yellow]note:[/yellow] {escape(result.note)}")
    if as_json:
        emit({"same": result.same, "score": round(result.score, 4), "threshold": result.threshold, "note": result.note})
    else:
        verdict = "[green]same person[/green]" if result.same else "[red]different people[/red]"
        out.print(f"{verdict} (score {result.score:.3f}, threshold {result.threshold:.3f})")
    if not result.same:
        raise typer.Exit(3)


def _verify_threshold(threshold: float | None) -> float:
    """--threshold, else the gallery's calibrated one if there is a gallery, else the default: comparing
    two photos needs no gallery, and must not create one."""
    from faceprint.errors import GalleryNotFoundError
    from faceprint.match import DEFAULT_VERIFY

    if threshold is not None:
        return threshold
    try:
        return float(state.recognizer().verify_threshold)
    except GalleryNotFoundError:
        return DEFAULT_VERIFY.threshold


def _pair_results(pairs: list[tuple[Path, Path]], threshold: float | None, workers: int) -> list[Any]:
    from faceprint.api import verify_pairs

    n_images = len({p for pair in pairs for p in pair})
    with progress_bar(n_images, "embedding", enabled=n_images > 2) as advance:
        return verify_pairs(
            state.engine(), pairs, _verify_threshold(threshold), workers, on_progress=lambda *_: advance()
        )


TRUTH = {
    "yes": True,
    "same": True,
    "true": True,
    "1": True,
    "no": False,
    "different": False,
    "false": False,
    "0": False,
}


def _read_pairs(path: Path) -> tuple[list[tuple[Path, Path]], list[bool | None]]:
    """Pairs of image paths from a CSV (header optional), with the truth column when present."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise fail(f"{path}: cannot read the pairs file ({exc})", 2) from None
    base = path.parent
    pairs: list[tuple[Path, Path]] = []
    truth: list[bool | None] = []
    for k, row in enumerate(rows):
        if len(row) < 2:
            raise fail(f"{path}: line {k + 1}: expected two image paths separated by a comma", 2)
        first, second = (Path(c.strip()) for c in row[:2])
        if k == 0 and not (base / first).exists() and not first.exists() and first.suffix == "":
            continue  # a header such as file_x,file_y
        pairs.append(tuple(p if p.is_absolute() else base / p for p in (first, second)))  # type: ignore[arg-type]
        truth.append(TRUTH.get(row[2].strip().lower()) if len(row) > 2 else None)
    if not pairs:
        raise fail(f"{path}: no pairs in the file", 2)
    return pairs, truth


def _verify_pairs(path: Path, threshold: float | None, as_json: bool) -> None:
    pairs, truth = _read_pairs(path)
    results = _pair_results(pairs, threshold, state.n_workers(2 * len(pairs)))
    failures: list[tuple[str, str]] = []
    right = labelled = 0
    for pair, expected in zip(results, truth):
        verdict = pair.result
        if pair.error is not None:
            failures.append((f"{pair.a} / {pair.b}", pair.error))
        elif expected is not None:
            labelled += 1
            right += verdict.same == expected
        record: dict[str, Any] = {
            "a": pair.a,
            "b": pair.b,
            "same": None if verdict is None else verdict.same,
            "score": None if verdict is None else round(verdict.score, 4),
            "threshold": None if verdict is None else verdict.threshold,
            "note": None if verdict is None else verdict.note,
            "expected": expected,
            "error": pair.error,
        }
        if as_json:
            emit(record)
        elif verdict is not None:
            word = "same" if verdict.same else "different"
            out.print(f"{escape(pair.a)}  {escape(pair.b)}: {word} ({verdict.score:.3f})")
    if labelled:
        err.print(f"{right}/{labelled} labelled pairs right ({right / labelled:.3f})")
    report_failures(failures)
    if failures:
        raise typer.Exit(1)


# -------------------------------------------------------------------------------- detect
def detect(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image per line.")] = False,
) -> None:
    """Find faces: box, detector score and 5 landmarks for each."""
    from faceprint.pipeline import EngineSpec, analyze_images

    files, empty = image_files(paths)
    engine = state.engine()

    def record(face: Face) -> dict[str, Any]:
        return {
            "box": list(face.box),
            "score": round(face.score, 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks],  # type: ignore[union-attr]
        }

    def show(record: dict[str, Any]) -> None:
        out.print(f"{record['image']}: {len(record['faces'])} face(s)")
        for face in record["faces"]:
            points = " ".join(f"({x:.0f},{y:.0f})" for x, y in face["landmarks"])
            out.print(f"  box {tuple(face['box'])} score {face['score']:.3f} landmarks {points}")

    results = analyze_images(files, engine, EngineSpec.of(engine), "detect", state.n_workers(len(files)))
    report_images(
        ((r.source, [record(f) for f in r.faces], r.error) for r in results),
        len(files),
        "detecting",
        as_json,
        show,
        empty,
    )


def register(app: typer.Typer) -> None:
    app.command()(identify)
    app.command()(verify)
    app.command()(detect)
