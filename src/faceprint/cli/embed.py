"""``faceprint embed``: the template of every face in photos, as enrolment would store it (export, and
a way to check what a gallery holds)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from faceprint.cli.common import image_files, out, report_images, state

if TYPE_CHECKING:
    from faceprint.types import Face


def embed(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image per line.")] = False,
) -> None:
    """Print the template (embedding) of every face: box, the vector and the model that made it, the
    same vector enrolment stores for that face with the same global options (--detector, --embedder,
    --flip). A protected gallery stores it multiplied by its secret matrix."""
    from faceprint.pipeline import EngineSpec, analyze_images

    files, empty = image_files(paths)
    engine = state.engine()
    spec = EngineSpec.of(engine)
    model = spec.template_model

    def record(face: Face) -> dict[str, Any]:
        # float32 -> float: the exact value, which JSON's shortest repr reads back to the same float32
        return {"box": list(face.box), "embedding": [float(v) for v in face.embedding], "model": model}  # type: ignore[union-attr]

    results = analyze_images(files, engine, spec, "all", state.n_workers(len(files)))
    report_images(
        ((r.source, [record(f) for f in r.faces], r.error) for r in results),
        len(files),
        "embedding",
        as_json,
        _show,
        empty,
    )


def _show(record: dict[str, Any]) -> None:
    faces = record["faces"]
    image = escape(record["image"])
    if not faces:
        out.print(f"{image}: no faces")
        return
    dim = len(faces[0]["embedding"])
    out.print(f"{image}: {len(faces)} face(s), {dim}-d templates of {escape(faces[0]['model'])}")
    for face in faces:
        head = ", ".join(f"{v:+.3f}" for v in face["embedding"][:4])
        out.print(f"  {tuple(face['box'])}: [{head}, ...]")


def register(app: typer.Typer) -> None:
    app.command("embed")(embed)
