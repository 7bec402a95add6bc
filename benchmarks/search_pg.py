"""Search in a PostgreSQL gallery: pgvector's HNSW and IVFFlat over identity centroids in the database,
against faceprint's in-process FAISS index kept in step by the change log, and exact search.

    python benchmarks/search_pg.py                      # 300k templates (~100k identities)
    python benchmarks/search_pg.py --n 1000000          # 1M templates (~333k identities)
    python benchmarks/search_pg.py --ef 40,100,200,400 --probes 4,6 --json

The data are benchmarks/search.py's: synthetic identities fitted to real LFW templates, plus the real LFW
people, and held-out queries (see that file). The templates are loaded into a PostgreSQL gallery (a
pgserver in a temp folder unless --url) with COPY, as faceprint's schema holds them.

Variants, each measured for single-query latency (p50/p99 ms, as the client sees it; 1 thread) and
recall@1/@10 against exact search over the same centroids:

- ``Gallery.search`` with the FAISS IVF CentroidIndex (faceprint's path above the cut-over): in memory in
  each process, built from the database on first use, then caught up from the change log. The latency
  includes the version read (one round trip) and the names of the hits (another). Also: the build from the
  database, the catch-up after another process enrols, and the RSS the index adds.
- pgvector HNSW (m=16, ef_construction=64) over a table of identity centroids, at several hnsw.ef_search.
- pgvector IVFFlat over the same table (lists = 4 sqrt(N), as CentroidIndex), at probes = scale * sqrt(lists).
- exact numpy over the centroids (what Gallery does below the cut-over).

For the pgvector variants: the index build time and size; keeping such a table in step would be a centroid
update inside every enrolment's transaction (not measured here).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as base  # noqa: E402  (benchmarks/search.py: the data and the measures)

MODEL = "bench-model"


def load_gallery(url: str, d: base.Data) -> float:
    """Copy the templates into a fresh faceprint schema at ``url`` (COPY, binary vectors): seconds taken."""
    import psycopg
    from pgvector.psycopg import register_vector

    from faceprint.gallery.postgres import PostgresStore

    PostgresStore(url).close()  # the schema
    t = time.perf_counter()
    with psycopg.connect(url) as conn:
        register_vector(conn)
        with conn.cursor() as cur:
            with cur.copy("COPY identities (id, name) FROM STDIN") as copy:
                for i in range(len(d.centroids)):
                    copy.write_row((i + 1, f"id{i}"))
            with cur.copy(
                "COPY templates (identity_id, model, embedding, source, file_sha256, box) FROM STDIN "
                "WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int8", "text", "vector", "text", "text", "int4[]"])
                for r, (vec, label) in enumerate(zip(d.templates, d.labels)):
                    copy.write_row((int(label) + 1, MODEL, vec, f"{label}/{r}.jpg", f"{label}-{r}", [0, 0, 1, 1]))
            cur.execute("SELECT setval(pg_get_serial_sequence('identities', 'id'), max(id)) FROM identities")
            cur.execute("SELECT setval(pg_get_serial_sequence('templates', 'id'), max(id)) FROM templates")
            cur.execute("ANALYZE")
    return time.perf_counter() - t


def bench_faiss(
    url: str, d: base.Data, truth: np.ndarray, accepted: np.ndarray
) -> tuple[dict[str, object], dict[str, float]]:
    """faceprint's own path: Gallery over the PostgreSQL store, above the cut-over."""
    from faceprint.gallery import Gallery, Template

    gc.collect()
    m0, t = base.rss_mb(), time.perf_counter()
    gallery = Gallery(url, ann_min_identities=1000)
    gallery.search(d.queries[0], MODEL, 1)
    info = {"build_from_db_s": time.perf_counter() - t, "rss_mb": base.rss_mb() - m0}
    position = {f"id{i}": i for i in range(len(d.centroids))}
    found = np.array([[position[c.identity] for c in r] for r in gallery.search(d.queries, MODEL, 10)])
    top1 = base.latency(lambda q: gallery.search(q, MODEL, 1), d.queries)
    top10 = base.latency(lambda q: gallery.search(q, MODEL, 10), d.queries)
    row = base.result_row(
        "Gallery.search, FAISS IVF in process (PostgreSQL store)", found, truth, accepted, top1, top10
    )
    other = Gallery(url, ann_min_identities=10**12)  # another replica enrols
    other.add_templates("newcomer", [Template(d.queries[0], MODEL, "new.jpg", "new", (0, 0, 1, 1))])
    t = time.perf_counter()
    assert gallery.search(d.queries[0], MODEL, 1)[0][0].identity == "newcomer"
    info["search_after_another_replica_enrols_ms"] = (time.perf_counter() - t) * 1e3
    other.remove("newcomer")
    gallery.search(d.queries[0], MODEL, 1)
    gallery.close()
    other.close()
    return row, info


def bench_pgvector(
    url: str, d: base.Data, truth: np.ndarray, accepted: np.ndarray, efs: list[int], scales: list[float]
) -> tuple[list[dict[str, object]], dict[str, float]]:
    """pgvector indexes over a table of the identity centroids."""
    import psycopg
    from pgvector.psycopg import register_vector

    rows: list[dict[str, object]] = []
    info: dict[str, float] = {}
    dim = d.centroids.shape[1]
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("SET maintenance_work_mem = '2GB'")
        conn.execute(f"CREATE TABLE bench_centroids (identity_id bigint PRIMARY KEY, centroid vector({dim}) NOT NULL)")
        with conn.cursor() as cur, cur.copy("COPY bench_centroids FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "vector"])
            for i, c in enumerate(d.centroids):
                copy.write_row((i, c))

        def run(name: str, setting: str, value: float) -> None:
            conn.execute(f"SET {setting} = {int(value)}")
            sql = "SELECT identity_id FROM bench_centroids ORDER BY centroid <#> %b LIMIT %s"

            def one(q: np.ndarray, k: int) -> list[tuple[Any, ...]]:
                return conn.execute(sql, (q[0], k), prepare=True).fetchall()

            found = np.array(
                [[r[0] for r in one(q[None], 10)] + [-1] * (10 - len(one(q[None], 10))) for q in d.queries]
            )
            top1 = base.latency(lambda q: one(q, 1), d.queries)
            top10 = base.latency(lambda q: one(q, 10), d.queries)
            rows.append(base.result_row(name, found, truth, accepted, top1, top10))
            print(rows[-1], file=sys.stderr, flush=True)

        for kind, build_sql in (
            (
                "hnsw",
                "CREATE INDEX bench_hnsw ON bench_centroids USING hnsw (centroid vector_ip_ops) "
                "WITH (m = 16, ef_construction = 64)",
            ),
            (
                "ivfflat",
                "CREATE INDEX bench_ivf ON bench_centroids USING ivfflat (centroid vector_ip_ops) "
                f"WITH (lists = {max(1, int(4 * math.sqrt(len(d.centroids))))})",
            ),
        ):
            t = time.perf_counter()
            conn.execute(build_sql)
            info[f"{kind}_build_s"] = time.perf_counter() - t
            index = "bench_hnsw" if kind == "hnsw" else "bench_ivf"
            info[f"{kind}_size_mb"] = conn.execute(f"SELECT pg_relation_size('{index}')").fetchone()[0] / 2**20
            if kind == "hnsw":
                for ef in efs:
                    run(f"pgvector HNSW m=16 ef_search={ef}", "hnsw.ef_search", ef)
            else:
                lists = max(1, int(4 * math.sqrt(len(d.centroids))))
                for scale in scales:
                    probes = min(lists, math.ceil(scale * math.sqrt(lists)))
                    run(f"pgvector IVFFlat probes={probes}/{lists}", "ivfflat.probes", probes)
            conn.execute(f"DROP INDEX {index}")
        info["table_mb"] = conn.execute("SELECT pg_relation_size('bench_centroids')").fetchone()[0] / 2**20
    return rows, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="folder holding lfw/ (default: $FACEPRINT_DATA or ../shared/data)")
    ap.add_argument("--n", type=int, default=300_000, help="templates in the gallery")
    ap.add_argument("--per-identity", type=float, default=3)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--ef", default="40,100,200,400", help="HNSW ef_search values")
    ap.add_argument("--probes", default="4,6", help="IVFFlat probe scales (probes = scale * sqrt(lists))")
    ap.add_argument("--url", default=None, help="an empty PostgreSQL database (default: start pgserver)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from faceprint.match import DEFAULT_IDENTIFY

    real = base.real_templates(
        base.data_dir(args.data) / "lfw", Path(tempfile.gettempdir()) / "faceprint-lfw-templates.npz"
    )
    d = base.make_data(real, args.n, args.per_identity, args.queries, args.seed)
    truth, scores = base.exact_topk(d.centroids, d.queries, 10)
    accepted = scores[:, 0] >= DEFAULT_IDENTIFY.threshold
    server = None
    top = Path(tempfile.mkdtemp(prefix="faceprint-search-pg-"))
    url = args.url
    if url is None:
        import pgserver

        server = pgserver.get_server(top / "pg", cleanup_mode="delete")
        url = server.get_uri()
    report: dict[str, Any] = {"templates": len(d.templates), "identities": len(d.centroids), "queries": len(d.queries)}
    report["load_s"] = load_gallery(url, d)
    print(
        f"{len(d.templates):,} templates of {len(d.centroids):,} identities loaded in {report['load_s']:.0f} s",
        file=sys.stderr,
    )
    rows = []
    faiss_row, report["faiss"] = bench_faiss(url, d, truth, accepted)
    rows.append(faiss_row)
    pg_rows, report["pgvector"] = bench_pgvector(
        url, d, truth, accepted, [int(x) for x in args.ef.split(",")], [float(x) for x in args.probes.split(",")]
    )
    rows += pg_rows
    rows.append(base.exact_row(d, 200))
    report["rows"] = rows
    if server is not None:
        server.cleanup()
    shutil.rmtree(top, ignore_errors=True)
    print(base.table(rows, base.COLUMNS))
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, default=lambda x: round(x, 2)))
    if args.json:
        print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
