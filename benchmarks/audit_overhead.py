"""What the audit log costs a request of ``faceprint serve``.

    python benchmarks/audit_overhead.py                   # SQLite gallery, 100,000 rows already logged
    python benchmarks/audit_overhead.py --rows 1000000 --requests 40 --postgres postgresql://...

Three figures:

1. one audit write (``AuditLog.add`` with the row of a two-face identification, as the routes write
   it), timed --writes times over a log already holding --rows rows; and the retention's DELETE
   when a tenth of the rows expire at once;
2. ``GET /v1/audit``'s query (a page of 100 and the total; then filtered by key and route);
3. end to end: POST /v1/identify of demo/photos/two_people.jpg (two faces, 490 KB) against the demo
   gallery on a live in-process server, --requests times with the log on and as many with it off,
   interleaved (on, off, on, ...), so that the machine's load hits both alike. Also the SHA-256 of
   a 2 MB upload, which each audited request computes.

With --postgres URL (an empty database) the first two are also measured on PostgreSQL.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
try:  # run from a checkout without installing: use the repo's src/
    import faceprint  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))

import httpx  # noqa: E402

from faceprint.api import Recognizer  # noqa: E402
from faceprint.engine import FaceEngine  # noqa: E402
from faceprint.gallery import Gallery  # noqa: E402
from faceprint.server import create_app  # noqa: E402
from faceprint.server.audit import AuditLog, stamp  # noqa: E402
from faceprint.server.store import ServerStore, open_server_store  # noqa: E402

DEMO = REPO / "demo"
PHOTO = DEMO / "photos" / "two_people.jpg"
#: the row of a two-face identification, as POST /v1/identify records it
REQUEST = {"top_k": 5, "threshold": None, "image": {"file": "two_people.jpg", "bytes": 487_722, "sha256": "ab" * 32}}
ANSWER = {
    "threshold": 0.942,
    "faces": 2,
    "matches": [
        {"identity": "obama", "score": 0.9672, "decision": "match", "candidates": [["obama", 0.9672], ["biden", 0.83]]},
        {"identity": None, "score": 0.8175, "decision": "unknown", "candidates": [["obama", 0.8175], ["biden", 0.8]]},
    ],
}


def ms(seconds: list[float]) -> dict[str, float]:
    s = sorted(seconds)
    return {
        "mean": round(1000 * statistics.fmean(s), 3),
        "p50": round(1000 * s[len(s) // 2], 3),
        "p95": round(1000 * s[int(len(s) * 0.95)], 3),
        "max": round(1000 * s[-1], 3),
    }


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def prefill(store: ServerStore, rows: int, start: datetime) -> None:
    """``rows`` rows spread over the 100 days before ``start``, 5 keys, 3 routes (one bulk statement)."""
    request, answer = json.dumps(REQUEST), json.dumps(ANSWER)
    step = timedelta(days=100) / max(rows, 1)
    data = [
        (stamp(start - timedelta(days=100) + k * step), k % 5 + 1, f"key {k % 5 + 1}", "POST",
         ("/v1/identify", "/v1/verify", "/v1/cluster")[k % 3], 200, 300.0, request, answer)
        for k in range(rows)
    ]  # fmt: skip
    sql = (
        "INSERT INTO audit_log (at, key_id, key_name, method, route, status, duration_ms, request, answer) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    from faceprint.server.store import PostgresServerStore

    if isinstance(store, PostgresServerStore):
        with store.gallery.connection() as conn, conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), data)
    else:
        db = store._conn.get()
        db.execute("BEGIN")
        db.executemany(sql, data)
        db.execute("COMMIT")


def store_figures(store: ServerStore, rows: int, writes: int) -> dict[str, Any]:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    prefill(store, rows, now)
    clock = {"now": now}
    audit = AuditLog(store, retention_days=365, clock=lambda: clock["now"])
    audit.add(key_id=1, key_name="k", method="POST", route="/v1/identify", status=200, duration_ms=1,
              request=REQUEST, answer=ANSWER)  # fmt: skip  # the first write prunes (nothing here)

    def write() -> None:
        audit.add(key_id=1, key_name="key 1", method="POST", route="/v1/identify", status=200, duration_ms=312.5,
                  request=REQUEST, answer=ANSWER)  # fmt: skip

    add = timed(write, writes)
    page = timed(lambda: audit.entries(limit=100), 20)
    filtered = timed(lambda: audit.entries(limit=100, key_id=3, route="/v1/verify"), 20)
    audit.retention_days = 90  # the oldest tenth of the rows is now past the retention
    t = time.perf_counter()
    pruned = audit.prune(now)
    prune_s = time.perf_counter() - t
    return {
        "rows_before": rows,
        "write_ms": ms(add),
        "page_of_100_ms": ms(page),
        "filtered_page_ms": ms(filtered),
        "prune": {"rows_deleted": pruned, "ms": round(1000 * prune_s, 1)},
    }


def end_to_end(gallery: Path, engine: FaceEngine, requests: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from tests.test_server_api import serve  # the tests' live uvicorn in a thread

    rec = Recognizer(Gallery(gallery), engine)
    store = ServerStore(gallery)
    key, _ = store.create_key("read", "bench")
    app = create_app(rec, store=store)
    audit = app.state.audit
    photo = PHOTO.read_bytes()
    times: dict[str, list[float]] = {"on": [], "off": []}
    with serve(app) as url, httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as client:
        for k in range(2 * requests + 2):
            mode = "on" if k % 2 == 0 else "off"
            app.state.audit = audit if mode == "on" else None
            t = time.perf_counter()
            r = client.post("/v1/identify", files={"image": ("two_people.jpg", photo, "image/jpeg")})
            elapsed = time.perf_counter() - t
            assert r.status_code == 200, r.text
            if k >= 2:  # the first pair warms up
                times[mode].append(elapsed)
    logged = audit.entries(limit=1)[1]
    rec.gallery.close()
    blob = os.urandom(2_000_000)
    sha = timed(lambda: hashlib.sha256(blob).hexdigest(), 50)
    return {
        "requests_each": requests,
        "audit_on_ms": ms(times["on"]),
        "audit_off_ms": ms(times["off"]),
        "rows_logged": logged,
        "sha256_2MB_ms": ms(sha),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000, help="rows in the log before measuring")
    ap.add_argument("--writes", type=int, default=500, help="audit writes timed")
    ap.add_argument("--requests", type=int, default=20, help="identify requests timed with the log on (and off)")
    ap.add_argument("--postgres", help="also measure on this (empty) PostgreSQL database")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="faceprint-audit-") as tmp:
        path = Path(tmp) / "gallery.db"
        engine = FaceEngine()
        rec = Recognizer(Gallery(path), engine)
        for person in sorted((DEMO / "gallery").iterdir()):
            rec.enroll(person.name, sorted(person.iterdir()))
        rec.gallery.close()
        out["sqlite"] = store_figures(ServerStore(path), args.rows, args.writes)
        if args.postgres:
            out["postgresql"] = store_figures(open_server_store(Gallery(args.postgres).store), args.rows, args.writes)
        out["identify"] = end_to_end(path, engine, args.requests)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for where in ("sqlite", "postgresql"):
        if where in out:
            f = out[where]
            print(
                f"{where}: {f['rows_before']:,} rows: one write mean {f['write_ms']['mean']} ms, "
                f"p95 {f['write_ms']['p95']} ms, max {f['write_ms']['max']} ms; "
                f"page of 100 + total {f['page_of_100_ms']['p50']} ms (filtered {f['filtered_page_ms']['p50']} ms); "
                f"retention deleted {f['prune']['rows_deleted']:,} rows in {f['prune']['ms']} ms"
            )
    e = out["identify"]
    print(
        f"POST /v1/identify two_people.jpg x{e['requests_each']} each, interleaved: "
        f"audit on p50 {e['audit_on_ms']['p50']} ms (mean {e['audit_on_ms']['mean']}), "
        f"off p50 {e['audit_off_ms']['p50']} ms (mean {e['audit_off_ms']['mean']}); "
        f"SHA-256 of 2 MB {e['sha256_2MB_ms']['p50']} ms"
    )


if __name__ == "__main__":
    main()
