"""``faceprint liveness``: is each face in a video (or a photo) a live person, or a replayed photo or screen?"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    """Add the ``liveness`` command to the faceprint CLI."""
    app.command(name="liveness")(liveness)


def liveness(
    source: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="Video file, camera index (0, 1, ...), RTSP/HTTP URL, or a photo (passive model only).",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (see the README's Liveness).")] = False,
    max_frames: Annotated[int | None, typer.Option("--max-frames", min=1, help="Stop after N frames.")] = None,
    every: Annotated[int, typer.Option("--every", min=1, help="Run the detector every N frames; track between.")] = 3,
    challenge: Annotated[
        str | None,
        typer.Option(
            "--challenge",
            metavar="ACTIONS",
            help="Active challenge instead: ask these actions in order (blink, turn_left, turn_right, smile, "
            "open_mouth; e.g. blink,turn_left), or 'random' for 2-3 drawn at random. Instructions go to stderr.",
        ),
    ] = None,
    action_s: Annotated[
        float, typer.Option("--action-s", min=1.0, max=60.0, help="With --challenge: seconds allowed per action.")
    ] = 6.0,
    reason: Annotated[
        bool,
        typer.Option(
            "--reason",
            help="Also ask a local VLM (--vlm-url) whether the longest track's face is live or an attack, which "
            "attack, and why. Advisory: shown next to the decision, never part of it.",
        ),
    ] = False,
    vlm_url: Annotated[
        str | None,
        typer.Option(
            "--vlm-url",
            help="With --reason: OpenAI-compatible API base of a VLM server, e.g. http://127.0.0.1:11434/v1 (Ollama).",
        ),
    ] = None,
    vlm_model: Annotated[
        str | None,
        typer.Option("--vlm-model", help="With --reason: the VLM's model name (default: the server's only model)."),
    ] = None,
) -> None:
    """Live face or presentation attack? One decision per face track of a video: the passive model
    (MiniFASNet) fused with motion cues (does the face move as a flat card, blink, speak). A photo
    gets the passive model alone, one row per face. The top-level answer is the longest track's.
    Exits 1 when the input cannot be read, 2 for a usage error."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    from faceprint.cli.common import emit, err, fail, out, progress_bar, state
    from faceprint.errors import FaceprintError
    from faceprint.liveness.decide import LivenessChecker, LivenessResult
    from faceprint.video.reader import VIDEO_SUFFIXES, describe, open_video

    shown, is_live, _ = describe(source)
    path = Path(source)
    is_photo = not is_live and path.suffix.lower() not in VIDEO_SUFFIXES
    if not is_live and not path.exists():
        raise fail(f"{source}: no such file")
    reasoner = _reasoner(reason, vlm_url, vlm_model, challenge)
    views = None if reasoner is None else _best_views()
    if challenge is not None:
        if is_photo:
            raise fail(f"{source}: --challenge needs a video, a camera or a stream, not a photo", 2)
        _run_challenge(source, shown, challenge, action_s, as_json)
        return
    try:
        checker = LivenessChecker(state.engine(), every=every)
        if is_photo:
            import cv2

            from faceprint.image import load_image

            image = load_image(path).pixels
            tracks = checker.check_image(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            result = LivenessResult(shown, tracks, frames=1)
            for track in tracks if views is not None else ():
                views.offer(track.track_id, image, track.box, bgr=False)
        else:
            reader = open_video(source)
            total = reader.frame_count if max_frames is None else min(max_frames, reader.frame_count or max_frames)
            try:
                with progress_bar(total or 0, Path(reader.name).name, enabled=err.is_terminal) as advance:
                    result = checker.check_video(
                        reader, max_frames=max_frames, on_frame=_on_frame(advance, views), name=shown
                    )
            finally:
                reader.close()
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    reasoning = None if reasoner is None else _reasoning(reasoner, views, result)
    if as_json:
        emit(result.to_dict() | ({} if reasoning is None else {"reasoning": reasoning.to_dict()}))
    else:
        _print_table(out, result)
        if reasoning is not None:
            _print_reasoning(out, reasoning)
    if not is_photo and result.elapsed_s > 0:
        err.print(
            f"{result.frames} frames in {result.elapsed_s:.1f} s ({result.frames / result.elapsed_s:.1f} frames/s)"
        )


def _print_table(console: Any, result: Any) -> None:
    from rich.table import Table

    verdict = {True: "live", False: "NOT live", None: "no face"}[result.live]
    table = Table(title=f"{result.input}: {verdict}")
    for name in ("track", "start", "end", "live", "score", "checks"):
        table.add_column(name, justify="left" if name == "checks" else "right")
    for t in result.tracks:
        # a NaN value: the cue had nothing to judge (a face that held still, or never sampled)
        checks = ", ".join(
            f"{name} {'ok' if c.passed else 'no'} ({c.value:.3g})" if c.value == c.value else f"{name} n/a"
            for name, c in t.checks.items()
        )
        table.add_row(
            str(t.track_id),
            f"{t.start_s:.2f}",
            f"{t.end_s:.2f}",
            "yes" if t.live else "no",
            f"{t.score:.3f}",
            checks,
            style=None if t.live else "yellow",
        )
    console.print(table)


def _run_challenge(source: str, shown: str, actions: str, action_s: float, as_json: bool) -> None:
    """``--challenge``: one challenge-response session on the video or camera (the largest face),
    its instructions on stderr as they come, the per-action result at the end."""
    from faceprint.cli.common import emit, err, fail, out, state
    from faceprint.errors import FaceprintError
    from faceprint.liveness.challenge import (
        ChallengeConfig,
        ChallengeModels,
        ChallengeState,
        parse_actions,
        run_challenge,
    )

    try:
        asked = None if actions.strip() == "random" else parse_actions(actions)
    except ValueError as exc:
        raise fail(f"--challenge: {exc}", 2) from None
    shown_instruction: list[str] = []

    def instruct(s: ChallengeState) -> None:
        if s.status == "running" and (not shown_instruction or shown_instruction[-1] != s.instruction):
            shown_instruction.append(s.instruction)
            limit = f" ({s.time_left_s:.0f} s)" if s.action and s.time_left_s is not None else ""
            err.print(f"[bold]{s.instruction}[/bold]{limit}")

    try:
        models = ChallengeModels(state.engine())
        session = run_challenge(models, source, asked, ChallengeConfig(action_s=action_s), instruct)
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    final = session.state()
    if as_json:
        emit({"input": shown, "live": final.status == "passed", "challenge": final.to_dict()})
        return
    verdict = "passed" if final.status == "passed" else f"FAILED: {final.reason}"
    out.print(f"{shown}: challenge {verdict}", soft_wrap=True)
    for a in final.actions:
        mark = {True: "done", False: "failed", None: "not reached"}[a.passed]
        when = f" at {a.time_s:.2f} s" if a.time_s is not None else ""
        out.print(f"  {a.action}: {mark}{when} (best {a.value:.3g})", soft_wrap=True)
    if final.passive is not None:
        out.print(f"  passive live score {final.passive:.3f}, template continuity {final.continuity or 1.0:.3f}")


# -- --reason: advisory VLM judgement (faceprint.liveness.reasoning) ---------------------------------


def _reasoner(reason: bool, vlm_url: str | None, vlm_model: str | None, challenge: str | None) -> Any:
    """The LivenessReasoner for --reason (None without it), its server checked before any frame is
    read: usage errors and an unreachable server exit 2."""
    from faceprint.cli.analyze import check_vlm_server
    from faceprint.cli.common import fail

    if not reason:
        if vlm_url or vlm_model:
            raise fail("--vlm-url and --vlm-model go with --reason", 2)
        return None
    if not vlm_url:
        raise fail("--reason needs --vlm-url (the VLM server's API base, e.g. http://127.0.0.1:11434/v1)", 2)
    if challenge is not None:
        raise fail("--reason goes with the passive check, not with --challenge", 2)
    from faceprint.liveness.reasoning import LivenessReasoner

    try:
        if not vlm_model:  # llama.cpp's server has one model; Ollama's may have many: pick the only one
            found = LivenessReasoner(vlm_url, "default", retries=0).check()
            if not found.models:
                raise fail(found.message, 2)
            if len(found.models) > 1:
                raise fail(f"--reason: give --vlm-model; {vlm_url} serves {', '.join(found.models)}", 2)
            vlm_model = found.models[0]
        reasoner = LivenessReasoner(vlm_url, vlm_model)
    except ValueError as exc:
        raise fail(f"--vlm-url/--vlm-model: {exc}", 2) from None
    check_vlm_server(reasoner)
    return reasoner


def _best_views() -> Any:
    from faceprint.liveness.reasoning import BestViews

    return BestViews()


def _on_frame(advance: Any, views: Any) -> Any:
    """check_video's on_frame: the progress bar, and with --reason each track's largest view."""

    def on_frame(result: Any) -> None:
        advance()
        if views is not None:
            views.update(result)

    return on_frame


def _reasoning(reasoner: Any, views: Any, result: Any) -> Any:
    """The VLM's advisory judgement of the track the top-level ``live`` is decided on (the longest)."""
    from faceprint.liveness.reasoning import Reasoning

    longest = result.longest
    if longest is None:
        return Reasoning.failed(reasoner.backend, "no face to judge")
    crop = views.crop(longest.track_id)
    if crop is None:
        return Reasoning.failed(reasoner.backend, f"track {longest.track_id} has no detector-confirmed view")
    return reasoner.reason(crop)


def _print_reasoning(console: Any, reasoning: Any) -> None:
    from rich.markup import escape

    console.print(
        f"VLM reasoning ({escape(reasoning.backend)}; advisory, NOT part of the live decision): "
        f"{reasoning.verdict}, attack type {reasoning.attack_type}",
        soft_wrap=True,
    )
    if reasoning.error:
        console.print(f"  no usable answer: {escape(reasoning.error)}", soft_wrap=True)
    for r in reasoning.reasons:
        console.print(f"  {r.cue}: {escape(r.observation)}", soft_wrap=True)
