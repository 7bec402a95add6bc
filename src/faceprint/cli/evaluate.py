"""``faceprint evaluate lfw|identification`` and ``faceprint calibrate``.

Only typer is imported at start-up; the engine, numpy work and matplotlib load when a
command runs, so ``faceprint --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

FALLBACK_HELP = (
    "When the detector finds no face: 'retry' looks again more permissively, then aligns a central box; "
    "'centre' aligns the central box (benchmark crops are centred); 'none' gives the image no template."
)

Root = Annotated[
    Path, typer.Option("--root", help="Data folder: ROOT/<identity>/<images>.", exists=True, file_okay=False)
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers", "-w", min=1, help="Processes computing templates (default: the global -w, else one per core)."
    ),
]


class FallbackMode(StrEnum):
    """faceprint.evaluate.extract.FALLBACKS, as choices (extract loads numpy: not at start-up)."""

    retry = "retry"
    centre = "centre"
    none = "none"


Fallback = Annotated[FallbackMode, typer.Option("--fallback", help=FALLBACK_HELP)]
UseCache = Annotated[
    bool,
    typer.Option("--cache/--no-cache", help="Reuse templates cached by file content (faceprint cache dir)."),
]
Enrol = Annotated[int, typer.Option("--enrol", min=1, help="Photos enrolled per known identity.")]
Probes = Annotated[int, typer.Option("--probes", min=1, help="Probe photos per identity (at most).")]
UnknownFraction = Annotated[
    float, typer.Option("--unknown-fraction", min=0.0, max=0.95, help="Share of identities held out as unknown.")
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the gallery/probe split.")]
MinPhotos = Annotated[
    int | None, typer.Option("--min-photos", min=2, help="Use identities with at least this many photos.")
]


def _extractor(fallback: FallbackMode, quality: bool = False) -> Any:
    """The engine named by the global options, built only if a template must be computed;
    ``quality``: also measure each face's quality (for the error-versus-discard curve)."""
    from faceprint.cli.common import state
    from faceprint.evaluate.extract import FALLBACKS, TemplateExtractor
    from faceprint.pipeline import EngineSpec

    assert fallback.value in FALLBACKS
    return TemplateExtractor(EngineSpec(state.detector, state.embedder, state.flip), fallback.value, quality)


def _workers(n: int | None) -> int:
    """This command's --workers, else the global ``faceprint -w``, else one per core, as every batch."""
    from faceprint.cli.common import state

    return n or state.n_workers(1_000_000)


def _cache(use: bool) -> Any:
    from faceprint.evaluate.cache import EmbeddingCache

    return EmbeddingCache() if use else None


def _pairs(root: Path, pairs: Path | None, names: tuple[str, ...] = ("pairs.txt",), option: str = "--pairs") -> Any:
    """The parsed pairs file: ``pairs``, else the first of ``names`` under ``root`` that exists."""
    from faceprint.cli.common import fail
    from faceprint.errors import FaceprintError
    from faceprint.evaluate.lfw import parse_pairs

    path = pairs or next((root / n for n in names if (root / n).is_file()), root / names[0])
    if not path.is_file():
        raise fail(f"{path}: pairs file not found (pass {option} FILE)", 2)
    try:
        return parse_pairs(path)
    except FaceprintError as exc:
        raise fail(str(exc), 2) from None


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _print_summary(rows: list[tuple[str, str]], warnings: list[str]) -> None:
    from faceprint.cli.common import err, out

    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        out.print(f"{key:>{width}}  {value}")
    for w in warnings:
        err.print(f"[yellow]warning:[/yellow] {w}")


def _no_face(s: dict[str, Any]) -> str:
    how = f"{s['found_on_retry']} found on a second look, {s['fallbacks']} central-box fallbacks"
    return f"{s['images']}; no face found in {s['no_face']} ({how}, {s['without_template']} without template)"


def _cache_line(s: dict[str, Any]) -> str:
    return f"{s['cache_hits']} hits, {s['cache_misses']} misses"


def _speed(s: dict[str, Any]) -> str:
    return "all cached" if s["images_per_s"] is None else f"{s['images_per_s']:.1f} images/s"


# -------------------------------------------------------------------------- evaluate lfw
def lfw_command(
    root: Root,
    pairs: Annotated[
        Path | None, typer.Option("--pairs", help="LFW-format pairs file (default ROOT/pairs.txt).", dir_okay=False)
    ] = None,
    as_json: Json = False,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write the ROC curve to this PNG (and the EDC curve beside it, NAME-edc.png)."),
    ] = None,
    plot_edc: Annotated[
        Path | None, typer.Option("--plot-edc", help="Write the error-versus-discard curve to this PNG.")
    ] = None,
    workers: Workers = None,
    fallback: Fallback = FallbackMode.retry,
    use_cache: UseCache = True,
    limit: Annotated[
        int | None, typer.Option("--limit", min=2, help="Use about this many pairs (balanced), for a quick check.")
    ] = None,
) -> None:
    """LFW verification, the standard protocol: 10-fold accuracy (threshold chosen on 9 folds),
    ROC AUC, TAR at FAR 1e-2 / 1e-3 and EER over every pair of a pairs file; and how well face
    quality finds the failures: the false non-match rate at the default threshold after discarding
    the 5, 10 and 20% of genuine pairs of lowest quality (error versus discard, EDC)."""
    from faceprint.cli.common import emit, fail, progress_bar
    from faceprint.errors import FaceprintError
    from faceprint.evaluate.lfw import evaluate_pairs, pair_images, plot_report_edc, plot_roc

    pair_list = _pairs(root, pairs)
    if limit:
        pair_list = pair_list.limit(limit)
    if plot is not None and plot_edc is None:
        plot_edc = plot.with_name(f"{plot.stem}-edc{plot.suffix or '.png'}")
    extractor = _extractor(fallback, quality=True)
    try:
        total = len(pair_images(root, pair_list))
        with progress_bar(total, "embedding") as advance:
            report = evaluate_pairs(root, pair_list, extractor, _cache(use_cache), _workers(workers), advance)
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    s = _plotted_summary(report, plot_roc, plot)
    if plot_edc:
        plot_report_edc(report, plot_edc)
        s["plot_edc"] = str(plot_edc)
    if as_json:
        emit(s)
        return
    _print_summary(
        [
            ("pairs", f"{s['pairs']} ({s['genuine_pairs']} same, {s['impostor_pairs']} different), {s['folds']} folds"),
            ("accuracy", f"{_pct(s['accuracy_mean'])} ± {_pct(s['accuracy_std'])}"),
            ("ROC AUC", f"{s['auc']:.5f}"),
            ("TAR @ FAR 1e-2", f"{_pct(s['tar_at_far_1e-2'])} (threshold {s['threshold_at_far_1e-2']})"),
            ("TAR @ FAR 1e-3", f"{_pct(s['tar_at_far_1e-3'])} (threshold {s['threshold_at_far_1e-3']})"),
            ("EER", f"{_pct(s['eer'])} (threshold {s['eer_threshold']:.4f})"),
            (f"FNMR @ {s['edc_threshold']:g}", _edc_line(s["edc"])),
            ("images", _no_face(s)),
            ("cache", _cache_line(s)),
            ("speed", f"{_speed(s)}; {s['wall_s']:.1f} s in all"),
            ("model", f"{s['model']} ({s['embedder']}), detector {s['detector']}"),
        ]
        + ([("plot", str(plot))] if plot else [])
        + ([("EDC plot", str(plot_edc))] if plot_edc else []),
        s.get("warnings", []),
    )


def _edc_line(rows: list[dict[str, Any]]) -> str:
    """'5.27%; 10% of lowest quality discarded: 3.20% (-39%)', for each discard fraction."""
    first, *rest = rows
    parts = [f"{100 * r['discard']:g}% discarded: {_pct(r['fnmr'])} (-{100 * r['reduction']:.0f}%)" for r in rest]
    return f"{_pct(first['fnmr'])}; lowest quality " + ", ".join(parts)


def _plotted_summary(report: Any, plotter: Callable[[Any, Path], object], plot: Path | None) -> dict[str, Any]:
    """The report's summary, after drawing its plot when one was asked for (the summary names it)."""
    s = report.summary
    if plot:
        plotter(report, plot)
        s["plot"] = str(plot)
    return s


# ---------------------------------------------------------------- evaluate identification
def identification_command(
    root: Root,
    enrol: Enrol = 2,
    probes: Probes = 4,
    unknown_fraction: UnknownFraction = 0.3,
    seed: Seed = 0,
    min_photos: MinPhotos = None,
    as_json: Json = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the DET and CMC curves to this PNG.")] = None,
    workers: Workers = None,
    fallback: Fallback = FallbackMode.retry,
    use_cache: UseCache = True,
) -> None:
    """1:N identification on ROOT/<identity>/<images>: closed-set rank-1/rank-5 and open-set
    DIR at FPIR 1e-2 / 1e-1, with unknown identities held out (seeded split)."""
    from faceprint.cli.common import emit, fail, progress_bar
    from faceprint.errors import FaceprintError
    from faceprint.evaluate.identification import evaluate_identification, list_identities, make_split, plot_det_cmc

    extractor = _extractor(fallback)
    try:
        split = make_split(list_identities(root), enrol, probes, unknown_fraction, seed, min_photos)
        with progress_bar(len(split.files), "embedding") as advance:
            report = evaluate_identification(root, split, extractor, _cache(use_cache), _workers(workers), advance)
    except (FaceprintError, ValueError) as exc:
        raise fail(str(exc)) from None
    s = _plotted_summary(report, plot_det_cmc, plot)
    if as_json:
        emit(s)
        return
    rows = [
        ("split", f"seed {s['seed']} (fingerprint {s['split']}); {s['skipped_identities']} identities skipped"),
        ("gallery", f"{s['enrolled_identities']} identities x {s['enrol_per_identity']} photos"),
        ("probes", f"{s['probes']} of enrolled people, {s['unknown_probes']} of {s['unknown_identities']} unknown"),
        ("rank-1", _pct(s["rank1"])),
        ("rank-5", _pct(s["rank5"])),
    ]
    for key in ("1e-2", "1e-1"):
        if f"dir_at_fpir_{key}" in s:
            th = s[f"threshold_at_fpir_{key}"]
            rows.append((f"DIR @ FPIR {key}", f"{_pct(s[f'dir_at_fpir_{key}'])} (threshold {th})"))
    rows += [
        ("images", _no_face(s)),
        ("cache", _cache_line(s)),
        ("speed", f"{_speed(s)}; {s['wall_s']:.1f} s in all"),
        ("model", f"{s['model']} ({s['embedder']}), detector {s['detector']}"),
    ]
    _print_summary(rows + ([("plot", str(plot))] if plot else []), s.get("warnings", []))


# ---------------------------------------------------------------------------- calibrate
def calibrate_command(
    root: Root,
    pairs: Annotated[
        Path | None, typer.Option("--pairs", help="Calibrate 1:1 verification on this LFW-format pairs file.")
    ] = None,
    identification: Annotated[
        bool, typer.Option("--identification", help="Calibrate 1:N identification on a seeded open-set split.")
    ] = False,
    far: Annotated[float, typer.Option("--far", min=1e-9, max=0.5, help="Target false-accept rate (1:1).")] = 1e-3,
    fpir: Annotated[
        float, typer.Option("--fpir", min=1e-9, max=0.5, help="Target false-positive identification rate (1:N).")
    ] = 0.05,
    all_pairs: Annotated[
        bool,
        typer.Option("--all-pairs", help="With --pairs: score every pair among the file's images, not just its list."),
    ] = False,
    enrol: Enrol = 2,
    probes: Probes = 4,
    unknown_fraction: UnknownFraction = 0.5,
    seed: Seed = 0,
    min_photos: MinPhotos = None,
    workers: Workers = None,
    fallback: Fallback = FallbackMode.retry,
    use_cache: UseCache = True,
    as_json: Json = False,
) -> None:
    """Choose the decision threshold for a target error rate on labelled data and store it in
    the gallery, where `identify` and `verify` pick it up. Needs about 10/FAR impostor trials."""
    from faceprint.api import IDENTIFY_THRESHOLD_KEY, VERIFY_THRESHOLD_KEY
    from faceprint.cli.common import emit, fail, out, progress_bar, state
    from faceprint.errors import FaceprintError
    from faceprint.evaluate import metrics
    from faceprint.evaluate.extract import compute_templates

    if identification == (pairs is not None):
        raise fail("give either --pairs FILE (1:1 verification) or --identification (1:N)", 2)
    extractor = _extractor(fallback)
    model = extractor.template_model
    cache = _cache(use_cache)
    date = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        if pairs is not None:
            from faceprint.evaluate.lfw import all_pair_scores, pair_images, pair_scores

            pair_list = _pairs(root, pairs)
            files = pair_images(root, pair_list)
            n_imp = _all_pairs_counts(files)[1] if all_pairs else int((~pair_list.labels).sum())
            need = metrics.min_impostors(far)
            if n_imp < need:
                hint = "" if all_pairs else ", or --all-pairs to score every pair among its images"
                raise fail(
                    f"{pairs} gives {n_imp} impostor pairs, too few for FAR {far:g}: measuring it needs "
                    f"about 10/FAR = {need}. {_higher('--far', n_imp)}{hint}.",
                    2,
                )
            with progress_bar(len(files), "embedding") as advance:
                templates, stats = compute_templates(files, extractor, cache, _workers(workers), advance)
            if all_pairs:
                genuine, impostor = all_pair_scores(files, templates)
                n_pairs = genuine.size + impostor.size
            else:
                scores, _ = pair_scores(root, pair_list, templates)
                genuine, impostor = scores[pair_list.labels], scores[~pair_list.labels]
                n_pairs = len(pair_list.pairs)
            threshold = metrics.threshold_at_far(impostor, far)
            key = f"{VERIFY_THRESHOLD_KEY}.{model}"
            value: dict[str, Any] = {
                "threshold": round(threshold, 6),
                "far": far,
                "measured_far": round(float((impostor >= threshold).mean()), 6),
                "tar": round(float((genuine >= threshold).mean()), 6),
                "measured_on": f"{pairs}" + (" (all pairs among its images)" if all_pairs else ""),
                "pairs": int(n_pairs),
                "genuine_pairs": int(genuine.size),
                "impostor_pairs": int(impostor.size),
                "no_face_images": stats.as_dict()["no_face"],
                "fallback": fallback.value,
                "date": date,
            }
        else:
            from faceprint.evaluate.identification import list_identities, make_split, score_split

            try:
                split = make_split(list_identities(root), enrol, probes, unknown_fraction, seed, min_photos)
            except ValueError as exc:
                raise fail(str(exc), 2) from None
            need = metrics.min_impostors(fpir)
            if len(split.unknown) < need:
                raise fail(
                    f"{root}: the split has {len(split.unknown)} unknown probes, too few for FPIR {fpir:g}: "
                    f"measuring it needs about 10/FPIR = {need}. {_higher('--fpir', len(split.unknown))}, "
                    "a larger --unknown-fraction or --probes, or more identities.",
                    2,
                )
            files = split.files
            with progress_bar(len(files), "embedding") as advance:
                templates, stats = compute_templates(files, extractor, cache, _workers(workers), advance)
            known, truth, unknown, names, _ = score_split(split, templates)
            best_unknown = unknown.max(axis=1)
            threshold = metrics.threshold_at_far(best_unknown, fpir)
            hit = (metrics.ranks(known, truth) == 1) & (known.max(axis=1) >= threshold)
            key = f"{IDENTIFY_THRESHOLD_KEY}.{model}"
            value = {
                "threshold": round(threshold, 6),
                "far": fpir,
                "measured_fpir": round(float((best_unknown >= threshold).mean()), 6),
                "dir": round(float(hit.mean()), 6),
                "measured_on": (
                    f"{root} (seed {seed}, split {split.digest()}: {len(names)} enrolled x {enrol}, "
                    f"{len({n for n, _ in split.unknown})} unknown identities)"
                ),
                "pairs": len(split.probes) + len(split.unknown),
                "probes": len(split.probes),
                "unknown_probes": len(split.unknown),
                "no_face_images": stats.as_dict()["no_face"],
                "fallback": fallback.value,
                "date": date,
            }
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    gallery = state.open_gallery(create=True)  # a threshold may be stored before anyone is enrolled
    gallery.set_setting(key, value)
    where = str(gallery.store.path)
    gallery.close()
    if as_json:
        emit({"gallery": where, "key": key, "value": value})
        return
    rate = "FAR" if pairs is not None else "FPIR"
    kept = value["tar"] if pairs is not None else value["dir"]
    measured = value["measured_far"] if pairs is not None else value["measured_fpir"]
    out.print(
        f"stored {key} = {value['threshold']:.4f} in {where}\n"
        f"  target {rate} {value['far']:g}, measured {rate} {measured:.5f}, "
        f"{'TAR' if pairs is not None else 'DIR'} {kept:.4f}, on {value['measured_on']}, {value['pairs']} trials"
    )


def _higher(option: str, trials: int) -> str:
    """What rate these trials can measure (~10/trials), if any sensible one."""
    rate = 10 / max(trials, 1)
    return f"Use {option} {rate:.2g} or higher" if rate <= 0.5 else "No useful rate can be measured on so few: add data"


def _all_pairs_counts(files: list[Path]) -> tuple[int, int]:
    """(genuine, impostor) pair counts among ``files`` (identity = parent folder)."""
    from collections import Counter

    n = len(files)
    genuine = sum(c * (c - 1) // 2 for c in Counter(f.parent.name for f in files).values())
    return genuine, n * (n - 1) // 2 - genuine


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` group and the ``calibrate`` command to the main CLI."""
    evaluate_app = typer.Typer(
        help="Measure accuracy the way the field does (LFW pairs, open-set identification).", no_args_is_help=True
    )
    evaluate_app.command("lfw")(lfw_command)
    evaluate_app.command("identification")(identification_command)
    app.add_typer(evaluate_app, name="evaluate")
    app.command("calibrate")(calibrate_command)
