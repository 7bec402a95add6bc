"""Identification on encrypted templates: CKKS (faceprint.privacy.encrypted) against a Paillier baseline.

    python benchmarks/encrypted_match.py                         # 1k, 10k, 100k identities
    python benchmarks/encrypted_match.py --sizes 1000 --probes 5 # quick
    python benchmarks/encrypted_match.py --json                  # machine-readable rows too
    python benchmarks/encrypted_match.py --mode encrypted-gallery # the gallery itself encrypted (no Paillier)

Data. Real templates: LFW people with >= 3 photos through the default FaceEngine (benchmarks/search.py's
cache, ~10 min the first time). Each real person is enrolled as the centroid of all their photos but
the last; the last photo is the probe. A gallery of N identities holds the first min(N, people) real
people, filled up with random unit vectors (they only make the gallery larger: the timing does not
depend on the values, and a random vector's cosine to a face is about 0 +- 0.09, far below the threshold).
Each probe is scored against all N rows, plaintext (float32, as Gallery.search) and encrypted.

Measured, one thread: the gallery side's time per query (``server``: its plaintexts already encoded, as
for every query after the first; ``cold``: the first, encoding them too), the client's encryption and
decryption + ranking, bytes up (parameters + ciphertexts) and down (ciphertexts; the names list the
service adds is not counted), the largest |encrypted - plaintext| score over every row of every probe,
and the share of probes whose decision (best identity if it clears the default threshold, else
unknown) is the plaintext one. Paillier (phe, 2048-bit key) is too slow for large galleries: it is
run on ``--paillier-rows`` rows and its per-row cost extrapolated linearly (marked "extrapolated").

``--mode encrypted-gallery`` (faceprint.privacy.encrypted_gallery): the key holder encrypts the same
gallery under its key (``build s``) and the gallery side stores only ciphertexts (``stored``); a query is
ciphertext x ciphertext. Measured: the gallery side's time per query (``cold``: the first, which also
loads the stored ciphertexts into SEAL objects), bytes up (probe ciphertexts; the parameters are
stored with the gallery) and down, error and agreement as above.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from search import data_dir, real_templates  # noqa: E402

from faceprint.match import DEFAULT_IDENTIFY  # noqa: E402
from faceprint.privacy.encrypted import EncryptedClient, EncryptedScorer, Layout  # noqa: E402
from faceprint.privacy.encrypted_gallery import EncryptedGallery, KeyHolder  # noqa: E402
from faceprint.privacy.paillier import KEY_BITS, PaillierClient, paillier_scores  # noqa: E402


def real_gallery(lfw: Path) -> tuple[np.ndarray, np.ndarray]:
    """(centroids of each LFW person's photos but the last, their last photo), one row per person."""
    vectors, labels = real_templates(lfw, Path(tempfile.gettempdir()) / "faceprint-lfw-templates.npz")
    cents, probes = [], []
    for person in np.unique(labels):
        rows = vectors[labels == person]
        if len(rows) < 2:
            continue
        mean = rows[:-1].mean(0)
        cents.append(mean / np.linalg.norm(mean))
        probes.append(rows[-1])
    return np.asarray(cents, np.float32), np.asarray(probes, np.float32)


def decision(scores: np.ndarray, threshold: float) -> int:
    best = int(np.argmax(scores))
    return best if scores[best] >= threshold else -1


def measure_queries(
    client: EncryptedClient,
    layout: Layout,
    gallery: np.ndarray,
    probes: np.ndarray,
    threshold: float,
    score: Callable[[list[bytes]], list[bytes]],
    up_extra: int = 0,
    cold_extra_ms: float = 0.0,
) -> dict[str, object]:
    """The per-query figures of both CKKS modes; ``score`` is the gallery side's work. Its first call
    (cold, plus ``cold_extra_ms`` of loading) is timed apart and repeated warm; ``up_extra`` bytes
    (the public context, where it travels) go up with every query."""
    enc_ms, cold_ms, server_ms, dec_ms, up, down = [], 0.0, [], [], 0, 0
    err, agree = 0.0, 0
    for i, probe in enumerate(probes):
        t = time.perf_counter()
        cipher = client.encrypt(probe, layout)
        enc_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        results = score(cipher)
        took = (time.perf_counter() - t) * 1e3
        if i == 0:
            cold_ms = took + cold_extra_ms
            t = time.perf_counter()
            results = score(cipher)
            took = (time.perf_counter() - t) * 1e3
        server_ms.append(took)
        t = time.perf_counter()
        scores = client.decrypt(results, layout)
        mine = decision(scores, threshold)
        dec_ms.append((time.perf_counter() - t) * 1e3)
        up, down = up_extra + sum(map(len, cipher)), sum(map(len, results))
        plain = gallery @ probe
        err = max(err, float(np.abs(scores - plain).max()))
        agree += mine == decision(plain, threshold)
    return {
        "server_ms": float(np.median(server_ms)),
        "cold_ms": cold_ms,
        "encrypt_ms": float(np.median(enc_ms)),
        "decrypt_ms": float(np.median(dec_ms)),
        "up_bytes": up,
        "down_bytes": down,
        "max_abs_error": err,
        "agreement": agree / len(probes),
        "probes": len(probes),
        "measured": True,
    }


def ckks_row(gallery: np.ndarray, probes: np.ndarray, threshold: float) -> dict[str, object]:
    client = EncryptedClient()
    scorer = EncryptedScorer(gallery)
    layout = client.layout(len(gallery), gallery.shape[1])
    context = client.public_context()
    measured = measure_queries(
        client, layout, gallery, probes, threshold, lambda c: scorer.evaluate(context, c, layout.fold), len(context)
    )
    return {"identities": len(gallery), "method": f"CKKS (N={2 * client.slots}, fold {layout.fold})", **measured}


def encrypted_gallery_row(gallery: np.ndarray, probes: np.ndarray, threshold: float) -> dict[str, object]:
    t = time.perf_counter()
    holder, built = KeyHolder.from_rows(gallery, [str(i) for i in range(len(gallery))], np.arange(len(gallery)), "", 0)
    build_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:  # the gallery side starts from the stored file
        built.save(Path(tmp) / "gallery.fpeg")
        stored_bytes = (Path(tmp) / "gallery.fpeg").stat().st_size
        t = time.perf_counter()
        stored = EncryptedGallery.load(Path(tmp) / "gallery.fpeg")
        read_ms = (time.perf_counter() - t) * 1e3
    del built
    client, layout = holder.client, stored.layout
    # the parameters are stored with the gallery: nothing but the probe goes up
    measured = measure_queries(client, layout, gallery, probes, threshold, stored.score, cold_extra_ms=read_ms)
    return {
        "identities": len(gallery),
        "method": f"CKKS encrypted gallery (N={2 * client.slots}, fold {layout.fold})",
        "build_s": build_s,
        "stored_bytes": stored_bytes,
        **measured,
    }


def print_gallery_table(rows: list[dict[str, object]]) -> None:
    print(
        "| identities | method | key holder: encrypt gallery s | stored | server ms/query (cold) | client encrypt ms "
        "| client decrypt+rank ms | up | down | max abs score error | same decision |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['identities']:,} | {r['method']} | {r['build_s']:.1f} | {fmt_bytes(r['stored_bytes'])} "  # type: ignore[arg-type]
            f"| {r['server_ms']:,.0f} ({r['cold_ms']:,.0f}) | {r['encrypt_ms']:,.0f} | {r['decrypt_ms']:,.0f} "
            f"| {fmt_bytes(r['up_bytes'])} | {fmt_bytes(r['down_bytes'])} | {r['max_abs_error']:.1e} "  # type: ignore[arg-type]
            f"| {r['agreement']:.0%} of {r['probes']} |"
        )


def paillier_rows(
    gallery: np.ndarray, probes: np.ndarray, rows: int, sizes: list[int], threshold: float
) -> list[dict[str, object]]:
    """Measured on the first ``rows`` rows, then extrapolated per row to each size."""
    client = PaillierClient()
    part = gallery[:rows]
    enc_ms, row_ms, dec_row_ms, err, agree = [], [], [], 0.0, 0
    for probe in probes:
        t = time.perf_counter()
        cipher = client.encrypt(probe)
        enc_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        results = paillier_scores(client.public_key, cipher, part)
        row_ms.append((time.perf_counter() - t) * 1e3 / rows)
        t = time.perf_counter()
        scores = client.decrypt(results)
        dec_row_ms.append((time.perf_counter() - t) * 1e3 / rows)
        plain = part @ probe
        err = max(err, float(np.abs(scores - plain).max()))
        agree += decision(scores, threshold) == decision(plain, threshold)
    size = client.ciphertext_bytes
    out = []
    for n in [rows, *sizes]:
        out.append(
            {
                "identities": n,
                "method": f"Paillier-{KEY_BITS}",
                "server_ms": float(np.median(row_ms)) * n,
                "cold_ms": float(np.median(row_ms)) * n,
                "encrypt_ms": float(np.median(enc_ms)),
                "decrypt_ms": float(np.median(dec_row_ms)) * n,
                "up_bytes": size * probes.shape[1],
                "down_bytes": size * n,
                "max_abs_error": err if n == rows else None,
                "agreement": agree / len(probes) if n == rows else None,
                "probes": len(probes),
                "measured": n == rows,
            }
        )
    return out


def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def print_table(rows: list[dict[str, object]]) -> None:
    print(
        "| identities | method | server ms/query (cold) | client encrypt ms | client decrypt+rank ms | up | down "
        "| max abs score error | same decision |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        mark = "" if r["measured"] else " (extrapolated)"
        err = "-" if r["max_abs_error"] is None else f"{r['max_abs_error']:.1e}"
        agree = "-" if r["agreement"] is None else f"{r['agreement']:.0%} of {r['probes']}"
        server = f"{r['server_ms']:,.0f}" if r["server_ms"] >= 10 else f"{r['server_ms']:.1f}"
        cold = f" ({r['cold_ms']:,.0f})" if r["measured"] and str(r["method"]).startswith("CKKS") else ""
        print(
            f"| {r['identities']:,} | {r['method']}{mark} | {server}{cold} | {r['encrypt_ms']:,.0f} "
            f"| {r['decrypt_ms']:,.0f} | {fmt_bytes(r['up_bytes'])} | {fmt_bytes(r['down_bytes'])} | {err} | {agree} |"  # type: ignore[arg-type]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="folder holding lfw/ (default: $FACEPRINT_DATA or ../shared/data)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="gallery sizes (identities)")
    parser.add_argument("--probes", type=int, default=20, help="probes per size (real LFW photos)")
    parser.add_argument("--paillier-rows", type=int, default=200, help="rows Paillier is measured on (0: skip)")
    parser.add_argument("--paillier-probes", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="also print each row as JSON")
    parser.add_argument(
        "--mode",
        choices=["plaintext-gallery", "encrypted-gallery"],
        default="plaintext-gallery",
        help="the gallery side holds plaintext templates (CKKS vs Paillier) or only ciphertexts of them",
    )
    args = parser.parse_args()

    sizes = [int(s) for s in args.sizes.split(",")]
    real, probes = real_gallery(data_dir(args.data) / "lfw")
    rng = np.random.default_rng(0)
    filler = rng.normal(size=(max(0, max(sizes) - len(real)), real.shape[1])).astype(np.float32)
    filler /= np.linalg.norm(filler, axis=1, keepdims=True)
    full = np.concatenate([real, filler])
    print(
        f"{len(real)} real LFW identities (centroids), their held-out photos as probes; filled with random unit vectors"
    )
    threshold = DEFAULT_IDENTIFY.threshold
    rows = []
    for n in sizes:
        # probes of people in this gallery, spread over it
        chosen = np.linspace(0, min(n, len(real)) - 1, args.probes).astype(int)
        if args.mode == "encrypted-gallery":
            rows.append(encrypted_gallery_row(full[:n], probes[chosen], threshold))
        else:
            rows.append(ckks_row(full[:n], probes[chosen], threshold))
    if args.mode == "encrypted-gallery":
        print_gallery_table(rows)
        for r in rows if args.json else []:
            print(json.dumps(r))
        return
    if args.paillier_rows:
        chosen = np.linspace(0, min(args.paillier_rows, len(real)) - 1, args.paillier_probes).astype(int)
        rows += paillier_rows(full, probes[chosen], args.paillier_rows, sizes, threshold)
    print_table(rows)
    ckks = {r["identities"]: r for r in rows if str(r["method"]).startswith("CKKS")}
    for r in rows:
        if str(r["method"]).startswith("Paillier") and r["identities"] in ckks:
            speedup = r["server_ms"] / ckks[r["identities"]]["server_ms"]  # type: ignore[operator]
            print(f"{r['identities']:,} identities: CKKS gallery side {speedup:,.0f}x faster than Paillier")
    if args.json:
        for r in rows:
            print(json.dumps(r))


if __name__ == "__main__":
    main()
