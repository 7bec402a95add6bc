"""``faceprint cluster``: group the faces of photos (and the tracks of videos) by person, no gallery needed.

The workflow it serves: cluster a photo library with ``--out DIR``, look at ``DIR/person-<k>/`` (or
the ``--html`` report), rename the folders of the people you know, delete the rest, and run
``faceprint enroll DIR``.
"""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from PIL import Image

from faceprint.cli.common import (
    ThresholdOption,
    emit,
    err,
    fail,
    image_files,
    out,
    progress_bar,
    report_failures,
    state,
)
from faceprint.errors import FaceprintError

#: context around a written face crop: enough for the detector to find the face again on enrolment
CROP_MARGIN = 0.5


def cluster(
    paths: Annotated[
        list[Path], typer.Argument(help="Photos, folders of photos, or video files (each face track is one item).")
    ],
    threshold: Annotated[float | None, ThresholdOption] = None,
    min_size: Annotated[
        int, typer.Option("--min-size", min=1, help="Smallest group; faces of smaller ones get cluster null.")
    ] = 1,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write each group's face crops to DIR/person-<k>/ (rename, then enroll DIR)."),
    ] = None,
    html_report: Annotated[
        Path | None, typer.Option("--html", help="Write a page showing each group's faces (self-contained).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per face per line.")] = False,
) -> None:
    """Group faces by person: every face of every photo, and every face track of every video file,
    gets a cluster number (largest group first)."""
    from faceprint.cluster import DEFAULT_THRESHOLD, cluster_images
    from faceprint.fileio import check_outputs
    from faceprint.video.reader import VIDEO_SUFFIXES

    videos = [p for p in paths if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    others = [p for p in paths if p not in videos]
    files, empty = image_files(others) if others else ([], [])
    try:
        check_outputs([*files, *videos], {"--out": out_dir, "--html": html_report}, folders=("--out",))
    except FaceprintError as exc:
        raise fail(str(exc), 2) from None
    engine = state.engine()
    total = len(files) + len(videos)
    with progress_bar(total, "clustering", enabled=total > 1) as advance:
        found = cluster_images(
            files,
            engine,
            workers=state.n_workers(len(files)),
            threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
            min_size=min_size,
            on_progress=advance,
            videos=videos,
        )
    failures = list(empty) + found.errors
    if as_json:
        for face in found.faces:
            emit(face.as_dict())
    else:
        _print_groups(found.faces)
    if found.no_face:
        err.print(f"{len(found.no_face)} image(s) with no face")
    try:
        if out_dir is not None:
            written = _write_crops(found.faces, out_dir)
            err.print(f"wrote {written} face crop(s) to {out_dir}/person-<k>/")
        if html_report is not None:
            _write_html(found.faces, html_report)
            err.print(f"wrote {html_report}")
    except (FaceprintError, OSError) as exc:
        report_failures(failures)
        raise fail(f"cannot write the outputs: {exc}") from None
    report_failures(failures)
    if failures:
        raise typer.Exit(1)


def _groups(faces: list[Any]) -> dict[int, list[Any]]:
    groups: dict[int, list[Any]] = defaultdict(list)
    for face in faces:
        if face.cluster is not None:
            groups[face.cluster].append(face)
    return dict(sorted(groups.items()))


def _print_groups(faces: list[Any]) -> None:
    groups = _groups(faces)
    alone = sum(f.cluster is None for f in faces)
    for k, members in groups.items():
        names = sorted({Path(f.image).name for f in members})
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        out.print(f"person-{k}: {len(members)} face(s) in {shown}")
    out.print(f"{len(faces)} face(s) in {len(groups)} group(s)" + (f"; {alone} in no group" if alone else ""))


def _face_crops(faces: list[Any]) -> Any:
    """(face, RGB crop) for every grouped face, each photo read once."""
    from faceprint.draw import crop_face
    from faceprint.image import load_image

    by_image: dict[str, list[Any]] = defaultdict(list)
    for face in faces:
        if face.cluster is not None and face.crop is not None:
            yield face, face.crop  # a video track's best view, cut when it was seen
        elif face.cluster is not None:
            by_image[face.image].append(face)
    for image, members in by_image.items():
        pixels = load_image(image).pixels
        for face in members:
            yield face, crop_face(pixels, face.box, CROP_MARGIN)


def _write_crops(faces: list[Any], out_dir: Path) -> int:
    from faceprint.fileio import AtomicPath

    counts: dict[tuple[int, str], int] = defaultdict(int)
    written = 0
    for face, crop in _face_crops(faces):
        folder = out_dir / f"person-{face.cluster}"
        folder.mkdir(parents=True, exist_ok=True)
        stem = Path(face.image).stem + (f"-track{face.track}" if face.track is not None else "")
        counts[(face.cluster, stem)] += 1
        n = counts[(face.cluster, stem)]
        with AtomicPath(folder / (f"{stem}.jpg" if n == 1 else f"{stem}-{n}.jpg")) as tmp:
            Image.fromarray(crop).save(tmp, quality=92)
        written += 1
    return written


def _thumbnail(crop: np.ndarray, size: int = 96) -> str:
    import io

    image = Image.fromarray(crop)
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _write_html(faces: list[Any], path: Path) -> None:
    from faceprint.fileio import atomic_write

    rows: dict[int, list[str]] = defaultdict(list)
    for face, crop in _face_crops(faces):
        title = html.escape(f"{face.image} {tuple(face.box)} score {face.score:.3f}", quote=True)
        rows[face.cluster].append(f'<img src="{_thumbnail(crop)}" title="{title}" alt="{title}">')
    sections = "\n".join(
        f"<section><h2>person-{k} <small>{len(imgs)} face(s)</small></h2><div>{''.join(imgs)}</div></section>"
        for k, imgs in sorted(rows.items())
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>faceprint: people in these photos</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem}}img{{height:96px;margin:2px;border-radius:4px}}
h2{{font-size:1.1rem;margin:1.2rem 0 .3rem}}small{{color:#666;font-weight:normal}}</style></head>
<body><h1>People in these photos</h1>
<p>{len(rows)} group(s). Rename a group's folder from <code>faceprint cluster --out DIR</code> to the person's
name and run <code>faceprint enroll DIR</code>.</p>
{sections}
</body></html>
"""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(page)


def register(app: typer.Typer) -> None:
    app.command()(cluster)
