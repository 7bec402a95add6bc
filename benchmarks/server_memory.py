"""Peak memory and latency of ``faceprint serve`` under concurrent uploads of very large images.

    python benchmarks/server_memory.py                            # 6 concurrent 8000x8000 PNGs, 2 rounds
    python benchmarks/server_memory.py --n 12 --side 6000 --format jpeg --json

The image: a flat canvas of --side x --side pixels with the demo photo of two people pasted in at
twice its size (so there are faces to find; a PNG of it is a few MB, the size of the canvas is what
costs memory). The service runs as a real ``faceprint serve`` process on 127.0.0.1 over an empty
gallery; one small warm-up request loads the models, then --n threads post /v1/identify at once,
--rounds times. Memory is the server process's own, from /proc/PID/status: VmRSS after warm-up,
VmHWM (the peak) after the bursts, and VmRSS a second after the last answer (what stays in use).
Bounded in count and in time; stops the server itself.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:  # run from a checkout without installing: use the repo's src/
    import faceprint  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))

import httpx  # noqa: E402
from PIL import Image  # noqa: E402

from faceprint.gallery import Gallery  # noqa: E402
from faceprint.server.store import ServerStore  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from server_throughput import faceprint_cmd, free_port  # noqa: E402

PHOTO = REPO / "demo" / "photos" / "two_people.jpg"


def big_image(side: int, fmt: str) -> bytes:
    canvas = Image.new("RGB", (side, side), (200, 205, 210))
    photo = Image.open(PHOTO).convert("RGB")
    photo = photo.resize((photo.width * 2, photo.height * 2), Image.Resampling.BICUBIC)
    canvas.paste(photo, ((side - photo.width) // 2, (side - photo.height) // 2))
    buf = io.BytesIO()
    canvas.save(buf, fmt.upper(), **({"quality": 90} if fmt == "jpeg" else {}))
    return buf.getvalue()


def rss_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kiB -> MiB
    return fields


@contextlib.contextmanager
def serving(gallery: Path, log: Path, max_upload_mb: float) -> Iterator[tuple[str, int]]:
    """``faceprint serve`` over ``gallery`` on a free loopback port: (base URL, process id); stopped after."""
    port = free_port()
    cmd = faceprint_cmd() + ["--gallery", str(gallery), "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--log-level", "warning", "--max-upload-mb", str(max_upload_mb)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                sys.exit(f"faceprint serve exited ({proc.returncode}): {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                sys.exit("faceprint serve did not start within 120 s")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        proc.kill()  # only if it is still running
        proc.wait()


def burst(url: str, key: str, payload: tuple[str, bytes, str], n: int) -> list[tuple[int, float, int]]:
    """n identify requests at once: (status, seconds, faces found) each."""
    barrier = threading.Barrier(n)
    results: list[tuple[int, float, int]] = []
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=300) as client:
            barrier.wait(timeout=60)
            t = time.perf_counter()
            try:
                r = client.post("/v1/identify", files={"image": payload})
                status, faces = r.status_code, len(r.json().get("faces", [])) if r.status_code == 200 else 0
            except httpx.HTTPError:
                status, faces = 0, 0
            with lock:
                results.append((status, time.perf_counter() - t, faces))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=6, help="concurrent uploads per round")
    ap.add_argument("--side", type=int, default=8000, help="image width and height, in pixels")
    ap.add_argument("--format", choices=["png", "jpeg"], default="png")
    ap.add_argument("--rounds", type=int, default=2, help="bursts of --n uploads, one after the other")
    ap.add_argument("--max-upload-mb", type=float, default=20.0)
    ap.add_argument("--json", action="store_true", help="print the results as one JSON object too")
    args = ap.parse_args()

    data = big_image(args.side, args.format)
    payload = (f"big.{args.format}", data, f"image/{args.format}")
    with tempfile.TemporaryDirectory(prefix="faceprint-mem-") as tmp:
        work = Path(tmp)
        Gallery(work / "gallery.db").close()
        key, _ = ServerStore(work / "gallery.db").create_key("read", "benchmark")
        with serving(work / "gallery.db", work / "serve.log", args.max_upload_mb) as (url, pid):
            with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as client:
                warm = client.post("/v1/identify", files={"image": (PHOTO.name, PHOTO.read_bytes(), "image/jpeg")})
                warm.raise_for_status()
            warm_rss = rss_mb(pid)["VmRSS"]
            print(
                f"{args.n} concurrent {args.side}x{args.side} {args.format.upper()} uploads "
                f"({len(data) / 1e6:.2f} MB each), {args.rounds} round(s); server warm at {warm_rss:.0f} MiB",
                flush=True,
            )
            results: list[tuple[int, float, int]] = []
            t0 = time.perf_counter()
            for k in range(args.rounds):
                burst_results = burst(url, key, payload, args.n)
                results += burst_results
                seconds = [dt for _, dt, _ in burst_results]
                print(
                    f"  round {k + 1}: latency {min(seconds):.1f}-{max(seconds):.1f} s, "
                    f"peak so far {rss_mb(pid)['VmHWM']:.0f} MiB",
                    flush=True,
                )
            wall = time.perf_counter() - t0
            time.sleep(1.0)
            mem = rss_mb(pid)
    latencies = [dt for _, dt, _ in results]
    result = {
        "n": args.n,
        "side": args.side,
        "format": args.format,
        "upload_mb": round(len(data) / 1e6, 2),
        "rounds": args.rounds,
        "ok": sum(status == 200 for status, _, _ in results),
        "statuses": sorted({status for status, _, _ in results}),
        "faces": sorted({faces for _, _, faces in results}),
        "warm_rss_mib": round(warm_rss),
        "peak_rss_mib": round(mem["VmHWM"]),
        "after_rss_mib": round(mem["VmRSS"]),
        "latency_max_s": round(max(latencies), 2),
        "latency_mean_s": round(sum(latencies) / len(latencies), 2),
        "wall_s": round(wall, 1),
        "cpus": os.cpu_count(),
    }
    print(
        f"peak RSS {result['peak_rss_mib']} MiB, {result['after_rss_mib']} MiB in use afterwards "
        f"(warm {result['warm_rss_mib']} MiB); latency mean {result['latency_mean_s']} s, "
        f"max {result['latency_max_s']} s; {result['ok']}/{len(results)} answered 200, "
        f"faces found per image {result['faces']}"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
