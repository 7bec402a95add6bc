"""Plots (one per attribute) and the self-contained HTML page of an attribute audit."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from faceprint.audit.attributes import TAR_KEY


def plot_attribute(report: dict[str, Any], name: str) -> bytes:
    """PNG: shift, alignment and TAR at FAR 1e-3 against the strength of one attribute (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["attributes"][name]
    x = [r["strength"] for r in rows]
    base = report["baseline"]
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.8), dpi=100)
    panels = (
        ("shift", "shift / between-person distance", None),
        ("alignment", "share in identity subspace", None),
        (TAR_KEY, "TAR at FAR 1e-3", base[TAR_KEY]),
    )
    for ax, (key, label, reference) in zip(axes, panels):
        ax.plot(x, [r[key] for r in rows], "o-")
        if reference is not None:
            ax.axhline(reference, color="grey", linestyle="--", linewidth=1, label="untouched")
        if key == "alignment":  # the yardsticks: natural changes of a face, and of identity
            ax.axhline(base["alignment_same_person"], color="green", linestyle="--", linewidth=1, label="same person")
            ax.axhline(
                base["alignment_different_people"], color="red", linestyle="--", linewidth=1, label="other person"
            )
        if key != "shift":
            ax.legend(fontsize=7)
        ax.set_xlabel(report["units"].get(name, "strength"), fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.grid(True, alpha=0.3)
        if len(x) == 1:
            ax.set_xticks(x)
    fig.suptitle(name, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    """One PNG per attribute in ``folder`` (created), named after the attribute."""
    from faceprint.fileio import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in report["attributes"]:
        path = folder / f"{name}.png"
        with atomic_write(path, "wb") as fh:
            fh.write(plot_attribute(report, name))
        paths.append(path)
    return paths


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_report(report: dict[str, Any]) -> str:
    """The audit as one HTML page, plots inlined as base64 PNG (no file beside it needed)."""
    base, sub = report["baseline"], report["subspace"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>faceprint attribute audit</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
        "margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "img{max-width:100%}</style></head><body>",
        "<h1>What the embedding encodes: attribute audit</h1>",
        f"<p>{html.escape(report['pairs_file'])}: {report['pairs']} pairs, {report['images']} photos; model "
        f"{html.escape(report['model'])}, detector {html.escape(report['detector'])}. Untouched TAR at FAR 1e-3: "
        f"{base[TAR_KEY]:.4f} (threshold {base['threshold']:.4f} from {base['impostor_trials']:,} cross-identity "
        f"pairs among the photos). Between-person distance {base['between_identity_distance']:.4f}. Identity "
        f"subspace: {sub['k']} of {sub['dim']} Fisher directions from {sub['identities']} people of "
        f"{html.escape(sub['pairs_file'])}; alignment of the change to another photo of the same person "
        f"{base['alignment_same_person']:.3f}, to a different person {base['alignment_different_people']:.3f}, "
        f"of an isotropic change {sub['chance_alignment']:.3f}.</p>",
    ]
    for name, rows in report["attributes"].items():
        png = base64.b64encode(plot_attribute(report, name)).decode("ascii")
        parts.append(f"<h2>{html.escape(name)} <small>({html.escape(report['units'].get(name, ''))})</small></h2>")
        parts.append(_table(rows, ["strength", "shift", "alignment", TAR_KEY, "far"]))
        parts.append(f"<img alt='{html.escape(name)}' src='data:image/png;base64,{png}'>")
    parts.append("<h2>Accuracy of the untouched pairs by condition</h2>")
    for factor, rows in report["conditions"].items():
        parts.append(f"<h3>{html.escape(factor)}</h3>")
        parts.append(_table(rows, list(rows[0].keys()) if rows else []))
    parts.append("</body></html>")
    return "\n".join(parts)
