"""Several `faceprint serve` replicas over one PostgreSQL gallery, under a bounded mixed load on loopback.

    python benchmarks/replicas.py                                 # 2 replicas, 8 clients, 60 s, 25% enrolments
    python benchmarks/replicas.py --replicas 2 --clients 8 --seconds 30 --enrol-share 0.25 --json
    python benchmarks/replicas.py --gallery postgresql://user:pw@host/db   # an empty database of yours

Without --gallery, a PostgreSQL server is started with pgserver (the ``postgres`` extra) in a temp folder.

Each client loops until the time is up: with probability ``--enrol-share`` it enrols a new person (one LFW
photo, ``POST /v1/identities/{name}/images?create=true``) through one replica, then at once asks the
*other* replica to identify that photo, repeating until the other names the new person (the cross-replica
delay); otherwise it identifies a photo of someone enrolled earlier through a random replica. Measured:
requests/s, p50/p95 latency per kind, every status code (5xx must be 0), the cross-replica delay, and
afterwards that every template an enrolment reported is in the database.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_replicas(n: int, gallery: str, work: Path) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    env = {**os.environ, "FACEPRINT_GALLERY": gallery}
    procs, urls = [], []
    for k in range(n):
        port = free_port()
        log = open(work / f"replica{k}.log", "wb")  # noqa: SIM115 - lives as long as the process
        cmd = [sys.executable, "-m", "faceprint.cli", "serve", "--port", str(port), "--log-level", "warning"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
        urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180
    for k, url in enumerate(urls):
        while True:
            if procs[k].poll() is not None:
                sys.exit(f"replica {k} exited: {(work / f'replica{k}.log').read_text()}")
            try:
                if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"replica {k} did not start")
            time.sleep(0.2)
    return procs, urls


def lfw_people(lfw: Path) -> list[list[Path]]:
    """Every LFW person's photos, people with at least two first (probes need a second photo)."""
    people = [sorted(p.iterdir()) for p in sorted(lfw.iterdir()) if p.is_dir()]
    return sorted(people, key=lambda photos: -min(len(photos), 2))


class Load:
    def __init__(self, urls: list[str], key: str, people: list[list[Path]], enrol_share: float, seed: int) -> None:
        self.urls = urls
        self.headers = {"Authorization": f"Bearer {key}"}
        self.people = people
        self.enrol_share = enrol_share
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.next_person = 0
        self.enrolled: list[tuple[str, list[Path]]] = []  # (name, photos) enrolled and confirmed
        self.latency: dict[str, list[float]] = {"enrol": [], "identify": []}
        self.status: Counter[int] = Counter()
        self.delays: list[float] = []  # seconds from an enrolment's answer to the other replica naming the person
        self.tries: list[int] = []  # identify requests to the other replica until it named the person
        self.not_seen: list[str] = []
        self.reported: list[tuple[str, str]] = []  # (name, photo) of every template an enrolment added

    def _post(self, client: httpx.Client, kind: str, url: str, **kw: Any) -> httpx.Response:
        t0 = time.perf_counter()
        r = client.post(url, headers=self.headers, timeout=120, **kw)
        elapsed = time.perf_counter() - t0
        with self.lock:
            self.status[r.status_code] += 1
            self.latency[kind].append(elapsed)
        return r

    def identify(self, client: httpx.Client, replica: str, photo: Path) -> httpx.Response:
        files = {"image": (photo.name, photo.read_bytes(), "image/jpeg")}
        return self._post(client, "identify", replica + "/v1/identify", files=files)

    def enrol_one(self, client: httpx.Client) -> None:
        with self.lock:
            if self.next_person >= len(self.people):
                return
            photos = self.people[self.next_person]
            name = photos[0].parent.name
            self.next_person += 1
            a, b = self.rng.sample(range(len(self.urls)), 2) if len(self.urls) > 1 else (0, 0)
        photo = photos[0]
        files = [("files", (photo.name, photo.read_bytes(), "image/jpeg"))]
        r = self._post(
            client, "enrol", f"{self.urls[a]}/v1/identities/{name}/images", params={"create": True}, files=files
        )
        if r.status_code != 200 or r.json().get("added", 0) < 1:
            return  # no face in the photo, say: nothing to look for
        with self.lock:
            self.reported.append((name, str(photo)))
        answered = time.perf_counter()
        tries = 0
        while True:  # the other replica must name the new person
            found = self.identify(client, self.urls[b], photo)
            tries += 1
            if found.status_code == 200 and name in [f["identity"] for f in found.json()["faces"]]:
                with self.lock:
                    self.delays.append(time.perf_counter() - answered)  # includes that request's own time
                    self.tries.append(tries)
                    self.enrolled.append((name, photos))
                return
            if time.perf_counter() - answered > 10:
                with self.lock:
                    self.not_seen.append(name)
                return

    def identify_one(self, client: httpx.Client) -> None:
        with self.lock:
            if not self.enrolled:
                return
            _, photos = self.rng.choice(self.enrolled)
            replica = self.rng.choice(self.urls)
        self.identify(client, replica, photos[1] if len(photos) > 1 else photos[0])

    def client_loop(self, until: float, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client() as client:
            while time.perf_counter() < until:
                if rng.random() < self.enrol_share or not self.enrolled:
                    self.enrol_one(client)
                else:
                    self.identify_one(client)


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gallery", default=None, help="an empty postgresql:// database (default: start pgserver)")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--enrol-share", type=float, default=0.25, help="share of client steps that enrol a new person")
    ap.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "data" / "lfw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    lfw = args.lfw if args.lfw.is_dir() else REPO / "tests" / "fixtures" / "lfw"

    from faceprint.gallery import open_store
    from faceprint.server.store import open_server_store

    work = Path(tempfile.mkdtemp(prefix="faceprint-replicas-"))
    server = None
    gallery = args.gallery
    if gallery is None:
        import pgserver

        server = pgserver.get_server(work / "pg", cleanup_mode="stop")
        gallery = server.get_uri()
    store = open_store(gallery)
    if store.identities():
        sys.exit(f"{gallery}: the gallery must be empty")
    key, _ = open_server_store(store).create_key("admin", "replicas benchmark")
    procs, urls = start_replicas(args.replicas, gallery, work)
    try:
        load = Load(urls, key, lfw_people(lfw), args.enrol_share, args.seed)
        t0 = time.perf_counter()
        until = t0 + args.seconds
        threads = [threading.Thread(target=load.client_loop, args=(until, args.seed + k)) for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    # afterwards: every template an enrolment reported is in the database
    missing = []
    for name, photo in load.reported:
        sha = hashlib.sha256(Path(photo).read_bytes()).hexdigest()
        if not any(t.file_sha256 == sha for t in store.templates(name)):
            missing.append(name)
    requests = sum(load.status.values())
    result = {
        "replicas": args.replicas,
        "clients": args.clients,
        "seconds": round(wall, 1),
        "requests": requests,
        "requests_per_s": round(requests / wall, 1),
        "enrolments": len(load.latency["enrol"]),
        "identifications": len(load.latency["identify"]),
        "enrol_ms_p50_p95": [pct(load.latency["enrol"], 50), pct(load.latency["enrol"], 95)],
        "identify_ms_p50_p95": [pct(load.latency["identify"], 50), pct(load.latency["identify"], 95)],
        "status": dict(sorted(load.status.items())),
        "server_errors": sum(n for s, n in load.status.items() if s >= 500),
        "cross_replica_delay_ms_max": pct(load.delays, 100),
        "cross_replica_delay_ms_p95": pct(load.delays, 95),
        "found_by_the_first_identify_of_the_other": f"{load.tries.count(1)} of {len(load.tries)}",
        "not_seen_by_the_other_replica": len(load.not_seen),
        "templates_reported": len(load.reported),
        "templates_missing": len(missing),
        "people_in_gallery": len(store.identities()),
    }
    store.close()
    if server is not None:
        server.cleanup()
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>32}: {v}")
    if result["server_errors"] or missing or load.not_seen:
        sys.exit(1)


if __name__ == "__main__":
    main()
