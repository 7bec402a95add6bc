"""``faceprint audit attributes``: what the embedding is and is not invariant to.

Only typer is imported at start-up; the engine, numpy and matplotlib load when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from faceprint.cli.evaluate import (
    Fallback,
    FallbackMode,
    Json,
    Root,
    UseCache,
    Workers,
    _cache,
    _extractor,
    _pairs,
    _workers,
)


def _table(report: dict[str, Any]) -> None:
    from faceprint.audit.attributes import TAR_KEY
    from faceprint.cli.common import out

    base, sub = report["baseline"], report["subspace"]
    out.print(
        f"{report['pairs_file']}: {report['pairs']} pairs, {report['images']} photos x "
        f"{report['conditions_per_image']} conditions; untouched TAR @ FAR 1e-3 {base[TAR_KEY]:.4f} "
        f"(threshold {base['threshold']:.4f}, {base['impostor_trials']:,} impostor pairs)"
    )
    out.print(
        f"shift: mean template change / mean between-person distance ({base['between_identity_distance']:.4f}); "
        f"alignment: share in {sub['k']} identity directions from {sub['identities']} other people "
        f"(another photo of the same person {base['alignment_same_person']:.3f}, a different person "
        f"{base['alignment_different_people']:.3f}, isotropic {sub['chance_alignment']:.3f})"
    )
    out.print(f"{'attribute':<16} {'strength':>8} {'shift':>7} {'align':>7} {'TAR@1e-3':>9} {'FAR':>9}")
    for name, rows in report["attributes"].items():
        for r in rows:
            out.print(
                f"{name:<16} {r['strength']:>8g} {r['shift']:>7.3f} {r['alignment']:>7.3f} "
                f"{r[TAR_KEY]:>9.4f} {r['far']:>9.5f}"
            )
    out.print("untouched pairs by condition (accuracy: 10-fold thresholds; TAR at the FAR 1e-3 threshold):")
    for factor, rows in report["conditions"].items():
        for r in rows:
            if "bin" not in r:
                continue
            acc = "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}%"
            tar = "-" if r[TAR_KEY] is None else f"{r[TAR_KEY]:.4f}"
            out.print(f"  {factor:<10} {r['bin']:<34} {r['pairs']:>5} pairs  accuracy {acc:>7}  TAR {tar}")


def attributes_command(
    root: Root,
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs",
            help="LFW-format pairs file to audit (default ROOT/pairsDevTest.txt, else ROOT/pairs.txt).",
            dir_okay=False,
        ),
    ] = None,
    basis: Annotated[
        Path | None,
        typer.Option(
            "--basis-pairs",
            help="Pairs file whose (other) people give the identity directions (default ROOT/pairsDevTrain.txt).",
            dir_okay=False,
        ),
    ] = None,
    attributes: Annotated[
        list[str] | None,
        typer.Option(
            "--attribute",
            "-a",
            metavar="NAME",
            help="Audit only this attribute (repeatable; default all): blur, jpeg, noise, resolution, brightness, "
            "contrast, occlusion_eyes, occlusion_mouth, rotation, flip.",
        ),
    ] = None,
    # faceprint.audit.subspace.DEFAULT_K, written out: numpy loads only when the command runs
    k: Annotated[int, typer.Option("--k", min=1, help="Identity directions in the subspace.")] = 16,
    as_json: Json = False,
    html_out: Annotated[
        Path | None,
        typer.Option("--html", help="Write a self-contained HTML report (tables and plots).", dir_okay=False),
    ] = None,
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Write one PNG per attribute into this folder.", file_okay=False)
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=2, help="Use about this many pairs of each file, for a quick run.")
    ] = None,
    workers: Workers = None,
    fallback: Fallback = FallbackMode.retry,
    use_cache: UseCache = True,
) -> None:
    """Apply controlled changes (blur, JPEG, noise, resolution, brightness, contrast, eye and mouth
    occlusion, rotation, flip) at several strengths to the photos of an LFW pairs file. For each:
    how far templates move relative to the distance between people, how much of that move lies along
    the directions that tell people apart, and TAR at FAR 1e-3 of untouched against changed photos.
    Also the untouched pairs' accuracy split by pose, sharpness and exposure."""
    from faceprint.audit.attributes import audit_attributes
    from faceprint.audit.transforms import conditions as make_conditions
    from faceprint.cli.common import emit, err, fail
    from faceprint.errors import FaceprintError
    from faceprint.fileio import atomic_write, check_outputs

    try:
        conditions = make_conditions(attributes)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    pair_list = _pairs(root, pairs, ("pairsDevTest.txt", "pairs.txt"))
    basis_list = _pairs(root, basis, ("pairsDevTrain.txt",), "--basis-pairs")
    if limit:
        pair_list, basis_list = pair_list.limit(limit), basis_list.limit(limit)
    try:
        check_outputs([pair_list.path], {"--html": html_out, "--plots": plots}, folders=("--plots",))
    except FaceprintError as exc:
        raise fail(str(exc), 2) from None
    extractor = _extractor(fallback, quality=True)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bars: dict[str, Any] = {}  # one bar per stage: the identity basis, then the audit itself
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as progress:

        def advance(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                label = "identity basis" if stage == "basis" else f"{len(conditions)} conditions"
                bars[stage] = progress.add_task(label, total=total)
            progress.update(bars[stage], completed=done)

        try:
            report = audit_attributes(
                root, pair_list, basis_list, extractor, conditions, _cache(use_cache), _workers(workers), k, advance
            )
        except (FaceprintError, ValueError) as exc:
            raise fail(str(exc)) from None
    if html_out is not None:
        from faceprint.audit.report import html_report

        with atomic_write(html_out, "w", encoding="utf-8") as fh:
            fh.write(html_report(report))
        report["html"] = str(html_out)
    if plots is not None:
        from faceprint.audit.report import write_plots

        report["plots"] = [str(p) for p in write_plots(report, plots)]
    if as_json:
        emit(report)
        return
    _table(report)
    for key in ("html", "plots"):
        if key in report:
            err.print(f"{key}: {report[key] if key == 'html' else plots}")


def register(app: typer.Typer) -> None:
    """Add the ``audit`` group to the main CLI."""
    audit_app = typer.Typer(help="Audit what the face templates encode.", no_args_is_help=True)
    audit_app.command("attributes")(attributes_command)
    app.add_typer(audit_app, name="audit")
