"""``faceprint audit attributes``: how far each controlled change moves templates, and what it costs.

For every image of an LFW pairs file the face is found once, on the untouched photo (the evaluation
pipeline: the face nearest the centre, the same fallbacks), and each condition (an attribute at a
strength, :mod:`faceprint.audit.transforms`) is applied to the photo, aligned with the untouched
photo's landmarks and embedded. Per condition:

- ``shift``: mean over photos of ``||e(T(x)) - e(x)||``, divided by the mean distance between
  different people's untouched templates (among the file's photos): 1 means the change moves a face
  as far as a different person is on average.
- ``alignment``: share of the shifts' energy in the identity subspace
  (:mod:`faceprint.audit.subspace`), estimated on *other* people (the basis pairs file, LFW DevTrain).
  Its yardsticks are in ``baseline``: the alignment of the differences between the two untouched
  templates of the file's same-person pairs (the natural nuisance: pose, light, age, expression) and of
  its different-person pairs (identity).
- ``tar_at_far_1e-3``: each mated pair compared both ways, untouched photo A against changed photo B
  and B against changed A, at the threshold where 1e-3 of impostor comparisons among the untouched
  photos are accepted. A pairs file's own 500 impostor pairs cannot resolve 1e-3, so the impostors are
  every cross-identity pair among the file's photos (DevTest: about 1.4 million).
- ``far``: the share of cross-identity comparisons (untouched against changed) accepted at that
  threshold, to tell whether a change makes strangers look alike.

The per-condition split (``conditions``) is the plain protocol on the untouched pairs, grouped by each
pair's own quality factors (:mod:`faceprint.analyze.quality`): the larger |yaw| of the two photos,
the lower sharpness, the lower exposure factor. Accuracy uses the 10-fold thresholds of the whole file
(chosen on the other folds, as ``faceprint evaluate lfw``), TAR the threshold above.

Templates are cached (:class:`faceprint.evaluate.cache.EmbeddingCache`): the untouched one under the
evaluation's own key (shared with ``faceprint evaluate lfw``), each condition's under that key plus the
condition, so a second run, or a larger one after a ``--limit`` run, reuses what was computed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceprint.audit.subspace import DEFAULT_K, IdentitySubspace, identity_subspace
from faceprint.audit.transforms import Condition
from faceprint.evaluate import metrics
from faceprint.evaluate.extract import ImageTemplate, TemplateExtractor, compute_templates, load_sha256
from faceprint.evaluate.lfw import PairList, all_pair_scores, image_path, pair_images
from faceprint.image import load_image
from faceprint.pipeline import EngineSpec, parallel_map

if TYPE_CHECKING:
    from faceprint.evaluate.cache import EmbeddingCache

#: bump when a transform changes, so that cached changed templates are not reused
AUDIT_VERSION = "1"
FAR = 1e-3
TAR_KEY = "tar_at_far_1e-3"
#: pose bins: the larger |yaw| of a pair's two photos, degrees
YAW_EDGES = (10.0, 20.0)

Job = tuple[str, str]  # (sha256, path)
AuditResult = tuple[str, ImageTemplate, list[ImageTemplate]]


def condition_context(extractor: TemplateExtractor, condition: Condition) -> str:
    """The cache key of a condition's templates (everything but the image bytes)."""
    return f"{extractor.context}|audit={condition.key}|a{AUDIT_VERSION}"


def audit_image(
    extractor: TemplateExtractor, conditions: Sequence[Condition], image: np.ndarray, seed: int = 0
) -> tuple[ImageTemplate, list[ImageTemplate]]:
    """The untouched template of ``image`` and one per condition, all aligned with the face found on
    the untouched image (one batch through the embedder)."""
    face, status, n_faces = extractor.find_face(image)
    if face is None:
        nothing = ImageTemplate(None, "none", 0, None)
        return nothing, [nothing] * len(conditions)
    base = extractor.template_of(image, face, status, n_faces)
    engine = extractor.engine
    chips = []
    for k, condition in enumerate(conditions):
        changed, landmarks = condition.apply(image, face.landmarks, seed + k)
        chips.append(engine.chips(changed, [replace(face, landmarks=landmarks)]))
    templates = engine.embed_chips(np.concatenate(chips)) if chips else []
    return base, [ImageTemplate(t, status, n_faces, base.box) for t in templates]


def _audit_file(extractor: TemplateExtractor, conditions: Sequence[Condition], job: Job) -> AuditResult:
    sha, path = job
    # a seed from the file's content: the same photo gets the same noise in every run
    base, changed = audit_image(extractor, conditions, load_image(path).pixels, int(sha[:8], 16))
    return sha, base, changed


def _file_auditor(spec: EngineSpec, fallback: str, conditions: Sequence[Condition]) -> Callable[[Job], AuditResult]:
    """What each worker process runs: its own engine and analyser, built once."""
    return partial(_audit_file, TemplateExtractor(spec.build(), fallback, quality=True), conditions)


def audit_templates(
    files: Sequence[Path],
    extractor: TemplateExtractor,
    conditions: Sequence[Condition],
    cache: EmbeddingCache | None = None,
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[dict[Path, ImageTemplate], dict[str, dict[Path, ImageTemplate]], int]:
    """(untouched template per file, {condition key: template per file}, photos computed); a photo
    missing any of them in the cache is computed whole."""
    if not extractor.quality:
        raise ValueError("the audit needs an extractor with quality=True (the per-condition split)")
    sha_of = {p: load_sha256(p) for p in files}
    shas = list(dict.fromkeys(sha_of.values()))
    contexts = {c.key: condition_context(extractor, c) for c in conditions}
    base: dict[str, ImageTemplate] = {}
    changed: dict[str, dict[str, ImageTemplate]] = {c.key: {} for c in conditions}
    if cache is not None:
        base = cache.get_many(shas, extractor.context, with_measures=True)
        for key, context in contexts.items():
            changed[key] = cache.get_many(shas, context)
    todo = [s for s in shas if s not in base or any(s not in changed[k] for k in changed)]
    path_of = {sha: p for p, sha in sha_of.items()}
    if on_progress:
        missing = set(todo)
        on_progress(sum(1 for p in files if sha_of[p] not in missing))
    uses: dict[str, int] = {}
    for sha in sha_of.values():
        uses[sha] = uses.get(sha, 0) + 1
    jobs = [(sha, str(path_of[sha])) for sha in todo]
    if workers > 1 and len(jobs) > 1:
        results = parallel_map(
            partial(_file_auditor, extractor.spec, extractor.fallback, list(conditions)), jobs, workers
        )
    else:
        results = map(partial(_audit_file, extractor, list(conditions)), jobs)
    pending: list[AuditResult] = []
    for result in results:
        sha, template, per_condition = result
        base[sha] = template
        for c, t in zip(conditions, per_condition):
            changed[c.key][sha] = t
        pending.append(result)
        if cache is not None and len(pending) >= 32:  # write as we go: an interrupted run keeps its work
            _store(cache, pending, extractor, conditions)
            pending.clear()
        if on_progress:
            on_progress(uses[sha])
    if cache is not None:
        _store(cache, pending, extractor, conditions)
    by_path = {p: base[sha] for p, sha in sha_of.items()}
    per_key = {k: {p: v[sha] for p, sha in sha_of.items()} for k, v in changed.items()}
    return by_path, per_key, len(jobs)


def _store(
    cache: EmbeddingCache, results: list[AuditResult], extractor: TemplateExtractor, conditions: Sequence[Condition]
) -> None:
    cache.put_many([(sha, base) for sha, base, _ in results], extractor.context)
    for k, c in enumerate(conditions):
        cache.put_many([(sha, changed[k]) for sha, _, changed in results], condition_context(extractor, c))


def _matrix(files: Sequence[Path], templates: dict[Path, ImageTemplate], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) templates with zero rows where there is none, and the mask of those that exist."""
    has = np.array([templates[f].embedding is not None for f in files])
    vecs = np.zeros((len(files), dim), np.float64)
    for i, f in enumerate(files):
        e = templates[f].embedding
        if e is not None:
            vecs[i] = e
    return vecs, has


def basis_subspace(
    root: Path,
    pairs: PairList,
    exclude: set[str],
    extractor: TemplateExtractor,
    cache: EmbeddingCache | None,
    workers: int,
    k: int = DEFAULT_K,
    on_progress: Callable[[int], None] | None = None,
) -> IdentitySubspace:
    """The identity subspace of the photos of ``pairs`` whose people are not in ``exclude``."""
    files = [f for f in pair_images(root, pairs) if f.parent.name not in exclude]
    if len({f.parent.name for f in files}) < 2:
        raise ValueError(f"{pairs.path}: fewer than 2 people left once those audited are set aside")
    plain = TemplateExtractor(extractor.spec, extractor.fallback)  # same cache key; no measures needed
    templates, _ = compute_templates(files, plain, cache, workers, on_progress)
    kept = [f for f in files if templates[f].embedding is not None]
    vecs = np.stack([templates[f].embedding for f in kept])  # type: ignore[misc]
    return identity_subspace(vecs, [f.parent.name for f in kept], k)


def _pair_index(root: Path, pairs: PairList, files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    index = {f: i for i, f in enumerate(files)}
    a = np.array([index[image_path(root, *p.a)] for p in pairs.pairs])
    b = np.array([index[image_path(root, *p.b)] for p in pairs.pairs])
    return a, b


def attribute_rows(
    root: Path,
    pairs: PairList,
    files: Sequence[Path],
    base: dict[Path, ImageTemplate],
    changed: dict[str, dict[Path, ImageTemplate]],
    conditions: Sequence[Condition],
    subspace: IdentitySubspace,
) -> dict[str, Any]:
    """The per-attribute figures and the baseline they are relative to."""
    dim = subspace.dim
    e0, has0 = _matrix(files, base, dim)
    genuine_all, impostor = all_pair_scores(list(files), base)
    threshold = metrics.threshold_at_far(impostor, FAR)
    spread = float(np.mean(np.sqrt(np.maximum(0.0, 2.0 - 2.0 * impostor[impostor > -1]))))
    a, b = _pair_index(root, pairs, files)
    mated = pairs.labels
    ga, gb = a[mated], b[mated]
    names = np.array([f.parent.name for f in files])
    cross = names[:, None] != names[None, :]

    def scores(x: np.ndarray, hx: np.ndarray, y: np.ndarray, hy: np.ndarray) -> np.ndarray:
        s = np.einsum("ij,ij->i", x, y)
        return np.where(hx & hy, s, -1.0)

    base_genuine = scores(e0[ga], has0[ga], e0[gb], has0[gb])
    # what alignment natural changes have: another photo of the same person, a different person
    ok = has0[a] & has0[b]
    natural = {
        f"alignment_{kind}": round(subspace.alignment((e0[b] - e0[a])[ok & want]), 5)
        for kind, want in (("same_person", mated), ("different_people", ~mated))
    }
    out: dict[str, list[dict[str, float]]] = {}
    for c in conditions:
        ec, hasc = _matrix(files, changed[c.key], dim)
        both = has0 & hasc
        d = ec[both] - e0[both]
        shift = float(np.linalg.norm(d, axis=1).mean() / spread) if both.any() else float("nan")
        # both ways: the untouched photo of one side against the changed photo of the other
        g = np.r_[scores(e0[ga], has0[ga], ec[gb], hasc[gb]), scores(e0[gb], has0[gb], ec[ga], hasc[ga])]
        s = e0 @ ec.T
        s[~has0] = -1.0
        s[:, ~hasc] = -1.0
        out.setdefault(c.attribute.name, []).append(
            {
                "strength": float(c.strength),
                "shift": round(shift, 5),
                "alignment": round(subspace.alignment(d), 5),
                TAR_KEY: round(float(np.mean(g >= threshold)), 5),
                "far": round(float(np.mean(s[cross] >= threshold)), 6),
            }
        )
    return {
        "attributes": out,
        "baseline": {
            TAR_KEY: round(float(np.mean(base_genuine >= threshold)), 5),
            "threshold": round(threshold, 6),
            "genuine_trials": int(base_genuine.size),
            "changed_genuine_trials": int(2 * base_genuine.size),
            "impostor_trials": int(impostor.size),
            "listed_impostor_pairs": int((~mated).sum()),
            "same_person_pairs_among_photos": int(genuine_all.size),
            "between_identity_distance": round(spread, 5),
            **natural,
        },
    }


def _bins(values: np.ndarray, edges: Sequence[float], fmt: str, name: str) -> list[tuple[str, np.ndarray]]:
    """[(label, mask)] for values cut at ``edges`` (ascending)."""
    cuts = [-np.inf, *edges, np.inf]
    out = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        if np.isinf(lo):
            label = f"{name} < {fmt.format(hi)}"
        elif np.isinf(hi):
            label = f"{name} >= {fmt.format(lo)}"
        else:
            label = f"{fmt.format(lo)} <= {name} < {fmt.format(hi)}"
        out.append((label, (values >= lo) & (values < hi)))
    return out


def condition_split(
    root: Path, pairs: PairList, files: Sequence[Path], base: dict[Path, ImageTemplate], threshold: float
) -> dict[str, list[dict[str, Any]]]:
    """Accuracy and TAR of the untouched pairs, grouped by the pair's pose, sharpness and exposure."""
    from faceprint.analyze.quality import quality_factors

    dim = next((t.embedding.size for t in base.values() if t.embedding is not None), 128)
    e0, has = _matrix(files, base, dim)
    a, b = _pair_index(root, pairs, files)
    scores = np.where(has[a] & has[b], np.einsum("ij,ij->i", e0[a], e0[b]), -1.0)
    labels, folds, valid = pairs.labels, pairs.folds, has[a] & has[b]
    kf = metrics.kfold_accuracy(scores, labels, folds, valid)
    fold_threshold = dict(zip(np.unique(folds).tolist(), kf.thresholds.tolist()))
    right = ((scores >= np.array([fold_threshold[f] for f in folds.tolist()])) == labels) & valid

    def per_image(get: Callable[[dict[str, float]], float]) -> np.ndarray:
        return np.array([get(base[f].measures) if base[f].measures else np.nan for f in files])

    yaw = per_image(lambda m: abs(m["yaw"]))
    sharp = per_image(lambda m: m["sharpness"])
    exposure = per_image(lambda m: float(quality_factors(m)["exposure"] or 0.0))
    pair_yaw = np.fmax(yaw[a], yaw[b])  # a pair is as hard as its harder photo
    pair_sharp = np.fmin(sharp[a], sharp[b])
    pair_exposure = np.fmin(exposure[a], exposure[b])
    tertiles = [float(v) for v in np.nanquantile(pair_sharp, [1 / 3, 2 / 3])]
    split = {
        "pose": _bins(pair_yaw, YAW_EDGES, "{:g}", "max yaw"),
        "sharpness": _bins(pair_sharp, tertiles, "{:.3f}", "min sharpness"),
        "exposure": [("min exposure factor < 1", pair_exposure < 1.0), ("exposure fine (1)", pair_exposure >= 1.0)],
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for factor, groups in split.items():
        rows = []
        for label, mask in groups:
            gen, imp = mask & labels, mask & ~labels
            rows.append(
                {
                    "bin": label,
                    "pairs": int(mask.sum()),
                    "genuine_pairs": int(gen.sum()),
                    "impostor_pairs": int(imp.sum()),
                    "accuracy": round(float(right[mask].mean()), 5) if mask.any() else None,
                    TAR_KEY: round(float(np.mean(scores[gen] >= threshold)), 5) if gen.any() else None,
                    "far": round(float(np.mean(scores[imp] >= threshold)), 5) if imp.any() else None,
                }
            )
        out[factor] = rows
    unmeasured = int(np.isnan(pair_yaw).sum())
    if unmeasured:
        out["unmeasured_pairs"] = [{"pairs": unmeasured}]
    return out


def audit_attributes(
    root: str | Path,
    pairs: PairList,
    basis_pairs: PairList,
    extractor: TemplateExtractor,
    conditions: Sequence[Condition],
    cache: EmbeddingCache | None = None,
    workers: int = 1,
    k: int = DEFAULT_K,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """The whole audit as one JSON-ready object. ``on_progress(stage, done, total)`` follows the
    two embedding stages ("basis", "audit")."""
    root = Path(root)
    t0 = time.perf_counter()
    files = pair_images(root, pairs)
    people = {f.parent.name for f in files}

    def progress(stage: str, total: int) -> Callable[[int], None] | None:
        if on_progress is None:
            return None
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            on_progress(stage, done[0], total)

        return advance

    basis_files = [f for f in pair_images(root, basis_pairs) if f.parent.name not in people]
    subspace = basis_subspace(
        root, basis_pairs, people, extractor, cache, workers, k, progress("basis", len(basis_files))
    )
    base, changed, computed = audit_templates(
        files, extractor, conditions, cache, workers, progress("audit", len(files))
    )
    report = attribute_rows(root, pairs, files, base, changed, conditions, subspace)
    report["conditions"] = condition_split(root, pairs, files, base, report["baseline"]["threshold"])
    statuses = [base[f].status for f in files]
    report.update(
        {
            "pairs_file": str(pairs.path),
            "pairs": len(pairs.pairs),
            "images": len(files),
            "no_face": sum(s != "face" for s in statuses),
            "images_computed": computed,
            "conditions_per_image": len(conditions),
            "units": {c.attribute.name: c.attribute.unit for c in conditions},
            "subspace": {
                "pairs_file": str(basis_pairs.path),
                "identities": subspace.identities,
                "templates": subspace.templates,
                "k": subspace.k,
                "dim": subspace.dim,
                "chance_alignment": round(subspace.chance, 5),
                "fisher_ratios": [round(float(r), 3) for r in subspace.ratios],
            },
            **extractor.describe(),
            "wall_s": round(time.perf_counter() - t0, 2),
        }
    )
    return report
