"""The batch pipeline on Ray (``faceprint --executor ray``) against local worker processes, on LFW photos.

    python benchmarks/ray_batch.py [--photos 400] [--json]

Runs, each in a process of its own, detect + align + embed over the same photos (``analyze_images``,
what ``identify``, ``enroll``, ``detect`` and ``cluster`` run):

- ``local, 2 workers``: the default executor, ``--workers 2``;
- ``ray, 1 actor`` and ``ray, 2 actors``: a local Ray that the run starts itself (RAY_ADDRESS unset);
- ``two nodes, 2 actors``: ``ray start --head`` and ``ray start --address`` on this machine, each node
  with 1 CPU at loopback addresses of its own (127.0.0.2, 127.0.0.3) and its own ports; the run
  joins it through RAY_ADDRESS and lists, while it works, on which nodes its actors are.

For each: the seconds until the first result (starting Ray or the workers, loading the models), the
rate after that, and the whole run. Then, on the two-node cluster, ``faceprint identify --json``
against a gallery of one photo per person, local (``--workers 2``) and ``--executor ray``: the share
of photos with the same answer (the same faces, names and scores).

The photos: the second LFW photo of ``--photos`` * 3/4 people with several (their first enrolled),
and one photo of people with only one (unknown), drawn with ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"  # loopback addresses that Ray does not rewrite


def lfw_root(arg: str | None) -> Path:
    for folder in (arg, os.environ.get("FACEPRINT_DATA"), REPO.parent / "shared" / "data"):
        if folder and (Path(folder) / "lfw").is_dir():
            return Path(folder) / "lfw"
    sys.exit("LFW not found: pass --data DIR (holding lfw/) or set FACEPRINT_DATA")


def choose(root: Path, n: int, seed: int) -> tuple[list[Path], list[Path]]:
    """(gallery photos, probe photos)."""
    people = sorted(p for p in root.iterdir() if p.is_dir())
    photos = {p: sorted(p.glob("*.jpg")) for p in people}
    rng = random.Random(seed)
    known = rng.sample([p for p in people if len(photos[p]) >= 2], n * 3 // 4)
    unknown = rng.sample([p for p in people if len(photos[p]) == 1], n - len(known))
    return [photos[p][0] for p in known], [photos[p][1] for p in known] + [photos[p][0] for p in unknown]


# ------------------------------------------------------------------------------ one measurement
def measure(executor: str, workers: int, listing: Path) -> dict[str, Any]:
    """Run in a child process: the batch over the photos listed, timed."""
    from faceprint.pipeline import EngineSpec, analyze_images, set_executor

    photos = listing.read_text().split("\n")
    set_executor("ray" if executor == "ray" else "local")
    start = time.perf_counter()
    # no engine in this process: only a local run with one worker would use it
    results = analyze_images(photos, None, EngineSpec(), "all", workers)  # type: ignore[arg-type]
    half = len(photos) // 2
    first = middle = start
    nodes = None
    faces = errors = 0
    for i, result in enumerate(results, 1):
        faces += len(result.faces)
        errors += result.error is not None
        if i == 1:
            first = time.perf_counter()
        if i == half:  # every worker is long started: the second half gives the steady rate
            if os.environ.get("RAY_ADDRESS"):
                nodes = _actor_nodes()
            middle = time.perf_counter()  # after the listing: the state API's time is not the batch's
    end = time.perf_counter()
    return {
        "first_result_s": round(first - start, 2),
        "steady_images_per_s": round((len(photos) - half) / (end - middle), 1),
        "total_s": round(end - start, 2),
        "images_per_s": round(len(photos) / (end - start), 1),
        "faces": faces,
        "errors": errors,
        "actor_nodes": nodes,
    }


def _actor_nodes() -> list[str]:
    """The node (IP) of every live FaceprintWorker actor, from Ray's state API."""
    import ray
    from ray.util.state import list_actors

    ips = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()}
    actors = list_actors(
        os.environ["RAY_ADDRESS"], filters=[("class_name", "=", "FaceprintWorker"), ("state", "=", "ALIVE")]
    )
    return sorted(ips.get(a.node_id, a.node_id) for a in actors)


def run_child(executor: str, workers: int, listing: Path, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--measure", executor, str(workers), str(listing)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        sys.exit(f"{executor} x{workers} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -------------------------------------------------------------------------- a two-node cluster
@contextmanager
def two_nodes(work: Path) -> Any:
    """A head and a second node on this machine, 1 CPU each; yields the environment that joins it.
    Both are stopped (SIGTERM to ``ray start --block``, which stops what it started) on the way out."""
    env = {**os.environ, "RAY_AUTH_MODE": "token"}  # a driver or node that joins must show the token
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)  # a second node refuses to start under it
    port = 46379
    common = ["--block", "--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats"]
    nodes = [
        ["--head", f"--port={port}", f"--node-ip-address={HEAD_IP}", "--dashboard-host=127.0.0.1"],
        [f"--address={HEAD_IP}:{port}", f"--node-ip-address={NODE_IP}"],
    ]
    started: list[subprocess.Popen[bytes]] = []
    try:
        for i, args in enumerate(nodes):
            with open(work / f"node{i}.log", "wb") as log:  # the child keeps its own handle
                cmd = [str(BIN / "ray"), "start", *common, *args]
                started.append(subprocess.Popen(cmd, stdout=log, stderr=log, env=env))
            _wait_for_nodes(env, f"{HEAD_IP}:{port}", i + 1, started)
        yield {**env, "RAY_ADDRESS": f"{HEAD_IP}:{port}"}
    finally:
        for proc in reversed(started):  # the second node first: the head would wait for it to drain
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_nodes(env: dict[str, str], address: str, count: int, started: list[subprocess.Popen[bytes]]) -> None:
    probe = f"import ray; ray.init(address={address!r}, logging_level='ERROR'); print(len(ray.nodes()))"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in started):
            sys.exit(f"a Ray node did not start: see {started[-1].args}")
        time.sleep(3)
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
        if proc.returncode == 0 and int(proc.stdout.split()[-1]) >= count:
            return
    sys.exit(f"the cluster at {address} never had {count} nodes")


# --------------------------------------------------------------------------------- agreement
def identify(gallery: Path, photos: Path, env: dict[str, str], *options: str) -> list[dict[str, Any]]:
    cmd = [str(BIN / "faceprint"), "--gallery", str(gallery), "--workers", "2", *options, "identify", "--json"]
    proc = subprocess.run([*cmd, str(photos)], capture_output=True, text=True, env=env, timeout=1800)
    return [json.loads(line) for line in proc.stdout.splitlines()]


def agreement(local: list[dict[str, Any]], remote: list[dict[str, Any]]) -> dict[str, Any]:
    def answer(r: dict[str, Any]) -> Any:
        return [(f["box"], f["identity"], round(f["score"], 3)) for f in r["faces"]], r["error"]

    same = sum(a["image"] == b["image"] and answer(a) == answer(b) for a, b in zip(local, remote))
    return {
        "photos": len(local),
        "lines_on_ray": len(remote),
        "same_answer": same,
        "agreement": round(same / max(1, len(local)), 4),
        "identical_output": local == remote,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="folder holding lfw/ (default: $FACEPRINT_DATA or ../shared/data)")
    ap.add_argument("--photos", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    ap.add_argument("--measure", nargs=3, metavar=("EXECUTOR", "WORKERS", "LISTING"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        executor, workers, listing = args.measure
        print(json.dumps(measure(executor, int(workers), Path(listing))))
        return

    enrol, probes = choose(lfw_root(args.data), args.photos, args.seed)
    rows: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ray_batch-")))
        listing = work / "photos.txt"
        listing.write_text("\n".join(map(str, probes)))
        local_env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        for name, executor, workers in (
            ("local, 2 workers", "local", 2),
            ("ray, 1 actor", "ray", 1),
            ("ray, 2 actors", "ray", 2),
        ):
            rows[name] = run_child(executor, workers, listing, local_env)
            print(f"{name}: {rows[name]}", file=sys.stderr)

        gallery, folder = work / "gallery.db", work / "probes"
        folder.mkdir()
        for p in probes:
            (folder / p.name).symlink_to(p)
        _enrol(gallery, enrol, local_env)
        cluster_env = stack.enter_context(two_nodes(work))
        rows["two nodes, 2 actors"] = run_child("ray", 2, listing, cluster_env)
        print(f"two nodes: {rows['two nodes, 2 actors']}", file=sys.stderr)
        agree = agreement(
            identify(gallery, folder, local_env), identify(gallery, folder, cluster_env, "--executor", "ray")
        )

    if args.json:
        print(json.dumps({"photos": len(probes), "runs": rows, "identify_agreement": agree}))
        return
    print(f"{len(probes)} LFW photos, {os.cpu_count()} cores")
    print(f"{'run':<22} {'first result s':>14} {'steady img/s':>12} {'total s':>8} {'img/s':>6}  actors on")
    for name, r in rows.items():
        where = ", ".join(r["actor_nodes"]) if r["actor_nodes"] else "-"
        print(
            f"{name:<22} {r['first_result_s']:>14} {r['steady_images_per_s']:>12} {r['total_s']:>8}"
            f" {r['images_per_s']:>6}  {where}"
        )
    print(f"identify --json, local vs two-node Ray: {agree['same_answer']}/{agree['photos']} photos agree", end="")
    print(f" ({agree['agreement']:.2%}; byte-identical output: {agree['identical_output']})")


def _enrol(gallery: Path, photos: list[Path], env: dict[str, str]) -> None:
    """One photo per person, under the person's folder name."""
    people = Path(tempfile.mkdtemp(dir=gallery.parent))
    for p in photos:
        (people / p.parent.name).mkdir()
        (people / p.parent.name / p.name).symlink_to(p)
    cmd = [str(BIN / "faceprint"), "--gallery", str(gallery), "--workers", "2", "enroll", str(people)]
    subprocess.run(cmd, capture_output=True, env=env, timeout=1800)


if __name__ == "__main__":
    main()
