"""The command line against hostile input: bad settings, names, thresholds, galleries that are
read-only, damaged or on a full disk, folders without images. Each answer is one clear line and
an exit code, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import DEMO, damage_gallery, faceprint, unprivileged

PHOTOS = DEMO / "photos"
OBAMA = str(PHOTOS / "obama1.jpg")


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gallery = tmp_path_factory.mktemp("hard") / "g.db"
    faceprint(gallery, "enroll", str(DEMO / "gallery"), check=True)
    return gallery


# ------------------------------------------------------------------------------ settings
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FACEPRINT_MAX_PIXELS", "abc"),
        ("FACEPRINT_MAX_PIXELS", "-1"),
        ("FACEPRINT_MAX_PIXELS", "1e12"),
        ("FACEPRINT_MAX_PIXELS", "12.5"),
        ("FACEPRINT_ANN_PROBE_SCALE", "x"),
        ("FACEPRINT_ANN_PROBE_SCALE", "0"),
        ("FACEPRINT_ANN_PROBE_SCALE", "nan"),
        ("FACEPRINT_ANN_PROBE_SCALE", "inf"),
        ("FACEPRINT_ANN_MIN_IDENTITIES", "abc"),
        ("FACEPRINT_ANN_MIN_IDENTITIES", "0"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(enrolled: Path, variable: str, value: str) -> None:
    proc = faceprint(enrolled, "identify", OBAMA, env={variable: value})
    no_traceback(proc)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and variable in proc.stderr and "expected" in proc.stderr


def test_a_good_setting_in_other_notation_is_accepted(enrolled: Path) -> None:
    proc = faceprint(enrolled, "people", env={"FACEPRINT_MAX_PIXELS": "1e9", "FACEPRINT_ANN_PROBE_SCALE": "6"})
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- thresholds
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "5", "-1.5"])
def test_threshold_must_be_a_finite_cosine(enrolled: Path, value: str) -> None:
    proc = faceprint(enrolled, "verify", "--json", "--threshold", value, OBAMA, OBAMA)
    assert proc.returncode == 2 and "--threshold" in proc.stderr
    assert proc.stdout == ""  # nothing half-printed, and never a bare NaN
    assert faceprint(enrolled, "identify", "--threshold", value, OBAMA).returncode == 2


def test_verify_json_is_strict_json(enrolled: Path) -> None:
    proc = faceprint(enrolled, "verify", "--json", "--threshold", "0.9", OBAMA, OBAMA)
    json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


# -------------------------------------------------------------------------------- names
@pytest.mark.parametrize("name", ["a/b", "..", ".", "../../etc/passwd", "", "   ", "x" * 10_000, "bad\x7fname", "<b>"])
def test_bad_names_are_refused_first(tmp_path: Path, name: str) -> None:
    gallery = tmp_path / "g.db"
    proc = faceprint(gallery, "enroll", "--name", name, OBAMA, OBAMA)
    no_traceback(proc)
    assert proc.returncode == 2
    assert proc.stderr.count("invalid identity name") == 1  # once, not once per file
    assert len(proc.stderr) < 400  # the name is not echoed in full
    assert not gallery.exists()  # refused before anything was done


def test_names_are_trimmed_on_lookup_too(tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    faceprint(gallery, "enroll", "--name", "  x  ", OBAMA, check=True)
    assert [p["name"] for p in json.loads(faceprint(gallery, "people", "--json").stdout)["people"]] == ["x"]
    faceprint(gallery, "rename", "  x ", "  y  ", check=True)
    assert faceprint(gallery, "rename", "y", "..").returncode == 1
    faceprint(gallery, "remove", "  y  ", check=True)


def test_bad_person_folder_is_reported_and_the_rest_enrolled(tmp_path: Path) -> None:
    root = tmp_path / "people"
    (root / "obama").mkdir(parents=True)
    shutil.copy(OBAMA, root / "obama")
    (root / ("x" * 250)).mkdir()
    shutil.copy(OBAMA, root / ("x" * 250))
    proc = faceprint(tmp_path / "g.db", "enroll", str(root))
    no_traceback(proc)
    assert proc.returncode == 1 and "longer than 200" in proc.stderr
    assert "enrolled 1 photo(s) of 1 person(s)" in proc.stdout


# ----------------------------------------------------------------------- image discovery
def test_an_empty_folder_is_an_error(enrolled: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for command in ("identify", "detect"):
        proc = faceprint(enrolled, command, str(tmp_path / "empty"))
        assert proc.returncode == 1 and "no images found" in proc.stderr, command


def test_symlinked_folders_are_followed_everywhere(enrolled: Path, tmp_path: Path) -> None:
    real = tmp_path / "real" / "obama"
    real.mkdir(parents=True)
    shutil.copy(OBAMA, real / "a.jpg")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "obama").symlink_to(real, target_is_directory=True)
    (linked / "obama" / "loop").symlink_to(linked, target_is_directory=True)  # a cycle must end
    proc = faceprint(enrolled, "identify", "--json", str(linked))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 1 and records[0]["faces"][0]["identity"] == "obama"
    detected = faceprint(enrolled, "detect", "--json", str(linked), check=True)
    assert len(detected.stdout.splitlines()) == 1
    enrolled_new = faceprint(tmp_path / "new.db", "enroll", str(linked), check=True)
    assert "enrolled 1 photo(s) of 1 person(s)" in enrolled_new.stdout


# ------------------------------------------------------------------------------ galleries
def test_reading_commands_never_create_a_gallery(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "g.db"
    for args in (("people",), ("identify", OBAMA), ("verify", OBAMA, "--identity", "x"), ("remove", "x")):
        proc = faceprint(missing, *args)
        no_traceback(proc)
        assert proc.returncode == 1 and "no gallery here" in proc.stderr, args
    assert not (tmp_path / "typo").exists()
    assert faceprint(missing, "detect", OBAMA).returncode == 0  # needs no gallery at all


def test_gallery_parent_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = faceprint(blocker / "sub" / "g.db", "enroll", "--name", "a", OBAMA)
    no_traceback(proc)
    assert proc.returncode == 1 and "cannot create the gallery" in proc.stderr


def test_sources_are_stored_as_absolute_paths(tmp_path: Path) -> None:
    shutil.copy(OBAMA, tmp_path / "o.jpg")
    gallery = tmp_path / "g.db"
    subprocess.run(
        [*faceprint_cmd(), "--gallery", str(gallery), "enroll", "--name", "o", "o.jpg"], cwd=tmp_path, check=True
    )
    with sqlite3.connect(gallery) as db:
        (source,) = db.execute("SELECT source FROM templates").fetchone()
    assert source == str(tmp_path / "o.jpg")


def faceprint_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "faceprint.cli"]


@pytest.fixture()
def world_tmp() -> Iterator[Path]:
    """A temporary folder another user can enter (pytest's tmp_path is private to root)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="faceprint-ro-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for p in path.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(path)


def test_read_only_gallery_reads_and_says_it_cannot_write(enrolled: Path, world_tmp: Path) -> None:
    folder = world_tmp / "ro"
    folder.mkdir()
    shutil.copy(enrolled, folder / "g.db")  # no -wal/-shm beside it: the hard case for SQLite
    (folder / "g.db").chmod(0o444)
    folder.chmod(0o555)
    cache = world_tmp / "cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    env = {"FACEPRINT_CACHE": str(cache), "HOME": str(cache)}
    prefix = unprivileged()
    people = faceprint(folder / "g.db", "people", "--json", env=env, prefix=prefix)
    assert people.returncode == 0, people.stderr
    assert len(json.loads(people.stdout)["people"]) == 5
    ident = faceprint(folder / "g.db", "identify", "--json", OBAMA, env=env, prefix=prefix)
    assert ident.returncode == 0, ident.stderr
    assert json.loads(ident.stdout)["faces"][0]["identity"] == "obama"
    for args in (("enroll", "--name", "x", OBAMA), ("remove", "obama"), ("rename", "obama", "b")):
        proc = faceprint(folder / "g.db", *args, env=env, prefix=prefix)
        no_traceback(proc)
        assert proc.returncode == 1 and "read-only" in proc.stderr, args


def test_damaged_gallery_is_a_clear_message(enrolled: Path, tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    shutil.copy(enrolled, gallery)
    damage_gallery(gallery)
    for args in (("identify", OBAMA), ("enroll", "--name", "obama", OBAMA), ("people",)):
        proc = faceprint(gallery, *args)
        no_traceback(proc)
        if proc.returncode != 0:  # "people" may not touch the damaged pages
            assert "damaged" in proc.stderr, (args, proc.stderr)
    assert faceprint(gallery, "identify", OBAMA).returncode == 1


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs (a full disk)")
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_during_enrol_stops_with_a_summary(small_disk: Path, tmp_path: Path) -> None:
    gallery = small_disk / "g.db"
    faceprint(gallery, "enroll", "--name", "seed", OBAMA, check=True)
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # fill the disk, then leave a few pages free
        while os.write(fd, b"\0" * 4096) == 4096:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - 20 * 4096))
    people = tmp_path / "people"
    for k in range(12):
        (people / f"p{k}").mkdir(parents=True)
        for src in sorted((DEMO / "gallery").rglob("*.jp*g"))[:2]:
            shutil.copy(src, people / f"p{k}" / src.name)
    proc = faceprint(gallery, "enroll", str(people))
    no_traceback(proc)
    assert proc.returncode == 1
    assert "disk is full" in proc.stderr and "not attempted" in proc.stderr
    summary = next(line for line in proc.stdout.splitlines() if line.startswith("enrolled"))
    stored_photos = int(summary.split()[1])
    assert stored_photos < 24
    filler.unlink()
    with sqlite3.connect(gallery) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM templates").fetchone()[0] == stored_photos + 1
    again = faceprint(gallery, "enroll", str(people))  # room again: the rest goes in
    assert again.returncode == 0, again.stderr


def test_read_only_gallery_is_served_read_only(enrolled: Path, world_tmp: Path) -> None:
    import socket
    import sys
    import time

    import httpx

    folder = world_tmp / "ro"
    folder.mkdir()
    shutil.copy(enrolled, folder / "g.db")
    key = faceprint(folder / "g.db", "keys", "create", "--role", "admin", check=True).stdout.strip()
    (folder / "g.db").chmod(0o444)
    folder.chmod(0o555)
    cache = world_tmp / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "FACEPRINT_CACHE": str(cache), "HOME": str(cache)}
    cmd = [*unprivileged(), sys.executable, "-m", "faceprint.cli", "--gallery", str(folder / "g.db")]
    server = subprocess.Popen(
        [*cmd, "serve", "--port", str(port), "--log-level", "warning"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        headers = {"X-API-Key": key}
        with open(OBAMA, "rb") as fh:
            found = httpx.post(f"{url}/v1/identify", files={"image": fh}, headers=headers, timeout=60)
        assert found.status_code == 200 and found.json()["faces"][0]["identity"] == "obama"
        with open(OBAMA, "rb") as fh:
            refused = httpx.post(f"{url}/v1/identities/obama/images", files={"files": fh}, headers=headers, timeout=60)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "gallery_read_only"
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert "Traceback" not in stderr, stderr
