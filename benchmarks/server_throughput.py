"""Throughput and latency of ``faceprint serve`` identifying real photos against a 1,000-person gallery.

    python benchmarks/server_throughput.py                       # 1,000 people, 4 clients, 80 requests
    python benchmarks/server_throughput.py --requests 200 --clients 8 --json

The gallery: the five demo people enrolled from their photos, plus synthetic people made from
real templates (computed from --base LFW photos in ../shared/data/lfw): each synthetic person is
a blend of two real faces' templates, and each of their 2-3 templates that centre plus a little
noise (about the spread of one person's real templates). They are inserted directly with
Gallery.add_templates, so building the gallery takes seconds, not an hour of enrolment.

The service runs as a real ``faceprint serve`` process on 127.0.0.1 (loopback only); --clients
threads post identify requests with the demo photos, round robin, until --requests are done or
--max-seconds have passed. Prints requests/s and p50/p95/max latency (and the cold single-client
latency of each photo). Bounded in count and in time; stops the server itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
try:  # run from a checkout without installing: use the repo's src/
    import faceprint  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))

import httpx  # noqa: E402

from faceprint.api import Recognizer  # noqa: E402
from faceprint.cli import State  # noqa: E402
from faceprint.engine import FaceEngine, normalize  # noqa: E402
from faceprint.errors import FaceprintError  # noqa: E402
from faceprint.gallery import Gallery, Template  # noqa: E402
from faceprint.server.store import ServerStore  # noqa: E402

DEMO = REPO / "demo"


def data_dir(arg: str | None) -> Path:
    for candidate in (arg, os.environ.get("FACEPRINT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "lfw").is_dir():
            return Path(candidate)
    sys.exit("LFW not found: pass --data DIR (holding lfw/) or set FACEPRINT_DATA")


def base_templates(rec: Recognizer, lfw: Path, n: int) -> np.ndarray:
    """Real templates: the first photo of n LFW people, evenly spread over the alphabet."""
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    picks = [people[i] for i in np.linspace(0, len(people) - 1, n).round().astype(int)]
    out = []
    for person in picks:
        try:
            _, face = rec.single_face(sorted(person.glob("*.jpg"))[0], largest=True)
        except (FaceprintError, IndexError):
            continue
        out.append(face.embedding)
    return np.asarray(out, np.float32)


def build_gallery(path: Path, engine: FaceEngine, lfw: Path, people: int, base: int, seed: int) -> dict[str, float]:
    t0 = time.perf_counter()
    rec = Recognizer(Gallery(path), engine)
    demo_people = sorted(p for p in (DEMO / "gallery").iterdir() if p.is_dir())
    for person in demo_people:
        rec.enroll(person.name, sorted(person.iterdir()))
    t_demo = time.perf_counter() - t0
    real = base_templates(rec, lfw, base)
    t_base = time.perf_counter() - t0 - t_demo
    rng = np.random.default_rng(seed)
    dim = real.shape[1]
    for j in range(people - len(demo_people)):
        a, b = rng.choice(len(real), 2, replace=False)
        w = rng.uniform(0.55, 0.8)
        centre = normalize(w * real[a] + (1 - w) * real[b])
        templates = []
        for k in range(int(rng.integers(2, 4))):
            # per-dimension noise 0.025: cosine to the centre about 0.96, like one person's photos
            vec = normalize(centre + rng.normal(0, 0.025, dim).astype(np.float32))
            tag = f"synthetic/{j}/{k}"
            templates.append(
                Template(
                    embedding=vec,
                    model=rec.model,
                    source=tag,
                    file_sha256=hashlib.sha256(tag.encode()).hexdigest(),
                    box=(0, 0, 150, 150),
                    quality=1.0,
                )
            )
        rec.gallery.add_templates(f"synthetic_{j:04d}", templates)
    n_templates = sum(i.templates for i in rec.gallery.identities())
    stats = {
        "identities": len(rec.gallery),
        "templates": n_templates,
        "real_base_templates": len(real),
        "build_s": time.perf_counter() - t0,
        "demo_enrol_s": t_demo,
        "base_templates_s": t_base,
    }
    rec.gallery.close()
    return stats


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def faceprint_cmd() -> list[str]:
    script = Path(sys.executable).with_name("faceprint")
    return [str(script)] if script.exists() else [sys.executable, "-m", "faceprint.cli"]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=1000, help="gallery size (demo people included)")
    ap.add_argument("--base", type=int, default=120, help="real LFW templates the synthetic people are made of")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=80, help="identify requests in all (after warm-up)")
    ap.add_argument("--max-seconds", type=float, default=300, help="stop sending after this long")
    ap.add_argument("--detector", default=State.detector)
    ap.add_argument("--embedder", default=State.embedder, help="as `faceprint --embedder` (its default)")
    ap.add_argument("--data", help="folder holding lfw/ (default: $FACEPRINT_DATA or ../shared/data)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the results as one JSON object too")
    args = ap.parse_args()

    lfw = data_dir(args.data) / "lfw"
    photos = sorted((DEMO / "photos").glob("*.jp*g"))
    payloads = [(p.name, p.read_bytes()) for p in photos]
    work = Path(tempfile.mkdtemp(prefix="faceprint-bench-"))
    gallery = work / "gallery.db"
    proc: subprocess.Popen[bytes] | None = None
    try:
        engine = FaceEngine(detector=args.detector, embedder=args.embedder)
        print(f"building a {args.people}-person gallery ({engine.info.template_model}) ...", flush=True)
        built = build_gallery(gallery, engine, lfw, args.people, args.base, args.seed)
        del engine
        print(
            f"  {built['identities']} people, {built['templates']} templates in {built['build_s']:.1f} s "
            f"(demo enrolment {built['demo_enrol_s']:.1f} s, {built['real_base_templates']} real LFW templates "
            f"{built['base_templates_s']:.1f} s)",
            flush=True,
        )
        key, _ = ServerStore(gallery).create_key("read", "benchmark")

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        cmd = faceprint_cmd() + ["--gallery", str(gallery), "--detector", args.detector, "--embedder", args.embedder]
        cmd += ["serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        log = (work / "serve.log").open("wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                sys.exit(f"faceprint serve exited ({proc.returncode}): {(work / 'serve.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base_url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                sys.exit("faceprint serve did not start within 120 s")
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {key}"}

        # warm-up, one client: each photo once (its cold latency, and what the service answers)
        single: dict[str, float] = {}
        with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
            for name, data in payloads:
                t = time.perf_counter()
                r = client.post("/v1/identify", files={"image": (name, data, "image/jpeg")})
                single[name] = time.perf_counter() - t
                r.raise_for_status()
                who = [f["identity"] or "unknown" for f in r.json()["faces"]]
                print(f"  {name}: {', '.join(who) or 'no face'} ({single[name] * 1000:.0f} ms)", flush=True)

        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        counter = iter(range(args.requests))
        stop_at = time.monotonic() + args.max_seconds

        def client_loop(k: int) -> None:
            with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
                while time.monotonic() < stop_at:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    name, data = payloads[(i + k) % len(payloads)]
                    t = time.perf_counter()
                    try:
                        r = client.post("/v1/identify", files={"image": (name, data, "image/jpeg")})
                        ok = r.status_code == 200
                    except httpx.HTTPError as exc:
                        ok, r = False, exc  # type: ignore[assignment]
                    dt = time.perf_counter() - t
                    with lock:
                        (latencies.append(dt) if ok else errors.append(str(getattr(r, "status_code", r))))

        print(f"{args.clients} clients, {args.requests} identify requests ...", flush=True)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0

        result = {
            "people": built["identities"],
            "templates": built["templates"],
            "model": f"{args.detector}+{args.embedder}",
            "clients": args.clients,
            "requests": len(latencies),
            "errors": len(errors),
            "wall_s": round(wall, 2),
            "requests_per_s": round(len(latencies) / wall, 2),
            "p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "p95_ms": round(percentile(latencies, 95) * 1000, 1),
            "max_ms": round(max(latencies, default=float("nan")) * 1000, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
            "cpus": os.cpu_count(),
        }
        print(
            f"{result['requests']} requests in {wall:.1f} s with {args.clients} clients: "
            f"{result['requests_per_s']:.2f} requests/s, latency p50 {result['p50_ms']:.0f} ms, "
            f"p95 {result['p95_ms']:.0f} ms, max {result['max_ms']:.0f} ms; {len(errors)} error(s)"
        )
        if args.json:
            print(json.dumps(result))
        if errors:
            sys.exit(1)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
