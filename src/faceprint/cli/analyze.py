"""``faceprint analyze``: head pose, eyes, mouth, gaze, quality, expression and face-likeness of
every face in photos."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from faceprint.cli.common import err, fail, image_files, out, report_images, state


class ExpressionBackend(StrEnum):
    """faceprint.analyze.EXPRESSION_BACKENDS, as choices (the analyze package loads numpy)."""

    builtin = "builtin"
    vlm = "vlm"
    none = "none"


def analyze(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image per line.")] = False,
    expression: Annotated[
        ExpressionBackend,
        typer.Option(
            "--expression",
            help="Expression by the built-in model (fer's, on the CPU), by a VLM (--vlm-url, --vlm-model), or none.",
        ),
    ] = ExpressionBackend.builtin,
    vlm_url: Annotated[
        str | None,
        typer.Option(
            "--vlm-url", help="OpenAI-compatible API base of a VLM server, e.g. http://127.0.0.1:11434/v1 (Ollama)."
        ),
    ] = None,
    vlm_model: Annotated[str | None, typer.Option("--vlm-model", help="The VLM's model name, e.g. llava.")] = None,
) -> None:
    """Analyse every face: head pose (yaw, pitch, roll in degrees), eyes and mouth openness, gaze,
    quality with its factors, expression and face-likeness."""
    from faceprint.analyze import AnalyzerSpec, FaceAnalyzer, analyze_files, face_record
    from faceprint.errors import FaceprintError
    from faceprint.pipeline import EngineSpec

    if expression is ExpressionBackend.vlm and not (vlm_url and vlm_model):
        raise fail("--expression vlm needs --vlm-url and --vlm-model", 2)
    if expression is not ExpressionBackend.vlm and (vlm_url or vlm_model):
        raise fail("--vlm-url and --vlm-model go with --expression vlm", 2)
    files, empty = image_files(paths)
    spec = AnalyzerSpec(expression.value, vlm_url, vlm_model)
    try:
        analyzer = FaceAnalyzer(expression.value, vlm_url=vlm_url, vlm_model=vlm_model)
    except FaceprintError as exc:
        raise fail(str(exc), 2) from None
    check_vlm_server(analyzer.expression_classifier)
    engine = state.engine()
    results = analyze_files(files, engine, analyzer, (EngineSpec.of(engine), spec), "all", state.n_workers(len(files)))
    report_images(
        ((r.source, [face_record(f) for f in r.faces], r.error) for r in results),
        len(files),
        "analysing",
        as_json,
        _show,
        empty,
    )


def check_vlm_server(client: Any) -> None:
    """Before a batch: is the VLM server of ``client`` (anything with a VLMClient-like ``check()``; others
    are skipped) there? Unreachable stops the command (exit 2); a server that does not list the model
    only warns (llama.cpp's answers with whatever it has loaded)."""
    check = getattr(client, "check", None)
    if check is None:
        return
    found = check()
    if found.ok:
        return
    if not found.models:
        raise fail(found.message, 2)
    err.print(f"[yellow]warning:[/yellow] {escape(found.message)}")


def _show(record: dict[str, Any]) -> None:
    faces = record["faces"]
    out.print(f"{escape(record['image'])}: {len(faces)} face(s)" if faces else f"{escape(record['image'])}: no faces")
    for face in faces:
        pose = face["pose"]
        parts = [f"quality {face['quality']:.2f}"]
        weak = [k for k, v in face["quality_factors"].items() if v is not None and v < 0.5]
        if weak:
            parts[0] += f" (low: {', '.join(weak)})"
        if face["expression"] is not None:
            e = face["expression"]
            p = e["scores"].get(e["label"])
            parts.append(e["label"] + (f" {p:.2f}" if p is not None else ""))
        parts.append(f"yaw {pose['yaw']:+.0f}° pitch {pose['pitch']:+.0f}° roll {pose['roll']:+.0f}°")
        parts.append(f"eyes open {face['eyes_open']:.2f}, mouth open {face['mouth_open']:.2f}")
        if face["face_like"] is not None:
            parts.append(f"face-like {face['face_like']:.2f}")
        out.print(f"  {tuple(face['box'])}: " + " · ".join(parts))


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)
