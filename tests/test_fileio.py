"""Output paths: never an input or another output; files appear complete or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faceprint.errors import FaceprintError
from faceprint.fileio import AtomicPath, OutputError, atomic_write, check_outputs


def leftovers(folder: Path) -> list[str]:
    """Temporary files left in a folder (they are hidden: .<name>.<random>.part<suffix>)."""
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00video bytes" * 100)
    return path


@pytest.mark.parametrize(
    ("make", "how"),
    [
        (lambda clip: clip, "is the input"),
        (lambda clip: clip.parent / "." / "sub" / ".." / clip.name, "is the input"),  # another spelling
        (lambda clip: _symlink(clip.parent / "link.mp4", clip), "is the input"),
        (lambda clip: _hardlink(clip.parent / "hard.mp4", clip), "is a hard link to the input"),
    ],
    ids=["same", "spelled-differently", "symlink", "hard-link"],
)
def test_an_output_that_is_the_input_is_refused(clip: Path, make, how: str) -> None:
    (clip.parent / "sub").mkdir()
    out = make(clip)
    with pytest.raises(OutputError) as info:
        check_outputs([clip], {"--annotate": out})
    message = str(info.value)
    assert f"--annotate {out}: {how} {clip}" in message and "\n" not in message
    assert isinstance(info.value, FaceprintError) and info.value.code == "bad_output"


def _symlink(link: Path, target: Path) -> Path:
    link.symlink_to(target)
    return link


def _hardlink(link: Path, target: Path) -> Path:
    link.hardlink_to(target)
    return link


def test_two_outputs_on_one_path_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"--csv .*t\.json: is --json .*t\.json; each output needs its own path"):
        check_outputs([], {"--json": tmp_path / "t.json", "--csv": tmp_path / "sub" / ".." / "t.json"})
    (tmp_path / "sub").mkdir()
    with pytest.raises(OutputError, match="--crops .*: is --json"):
        check_outputs([], {"--json": tmp_path / "sub", "--crops": tmp_path / "sub"}, folders={"--crops"})


def test_stdout_none_and_distinct_paths_pass(clip: Path, tmp_path: Path) -> None:
    check_outputs(
        [clip, tmp_path / "missing.mp4"],
        {"--json": "-", "--csv": "-", "--annotate": None, "--crops": tmp_path / "new" / "crops", "x": "t.json"},
        folders={"--crops"},
    )


@pytest.mark.parametrize(
    ("output", "folder", "message"),
    [
        ("afile", True, "--out {p}: is a file, not a folder"),
        ("afile/sub/crops", True, "--out {p}: {t}/afile is a file, not a folder"),
        ("dir", False, "--out {p}: is a folder, not a file"),
        ("afile/t.json", False, "--out {p}: {t}/afile is a file, not a folder"),
        ("missing/t.json", False, "--out {p}: folder {t}/missing does not exist"),
    ],
)
def test_unwritable_places_are_one_line_errors(tmp_path: Path, output: str, folder: bool, message: str) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "dir").mkdir()
    path = tmp_path / output
    with pytest.raises(OutputError) as info:
        check_outputs([], {"--out": path}, folders={"--out"} if folder else ())
    assert str(info.value) == message.format(p=path, t=tmp_path)


def test_read_only_folder_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ro").mkdir()
    (tmp_path / "t.json").write_text("{}")
    # root ignores permission bits, so ask os.access what an ordinary user would be told
    real, denied = os.access, {tmp_path / "ro", tmp_path / "t.json"}
    monkeypatch.setattr(os, "access", lambda p, mode: real(p, mode) and Path(p) not in denied)
    with pytest.raises(OutputError, match=f"folder {tmp_path / 'ro'} is not writable"):
        check_outputs([], {"--json": tmp_path / "ro" / "t.json"})
    with pytest.raises(OutputError, match=f"folder {tmp_path / 'ro'} is not writable"):
        check_outputs([], {"--crops": tmp_path / "ro" / "a" / "b"}, folders={"--crops"})
    with pytest.raises(OutputError, match="the existing file is read-only"):
        check_outputs([], {"--json": tmp_path / "t.json"})


# ----------------------------------------------------------------------- atomic writes
def test_atomic_write_replaces_only_on_success(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write("half of the new")
        raise RuntimeError("disk on fire")
    assert path.read_text() == "old" and leftovers(tmp_path) == []
    with pytest.raises(KeyboardInterrupt), atomic_write(path, "wb") as f:
        f.write(b"half")
        raise KeyboardInterrupt
    assert path.read_text() == "old" and leftovers(tmp_path) == []
    with atomic_write(path, encoding="utf-8") as f:
        f.write("new ✓")
        assert path.read_text() == "old"  # not before the end of the block
    assert path.read_text(encoding="utf-8") == "new ✓" and leftovers(tmp_path) == []


def test_atomic_path_keeps_suffix_mode_and_writes_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real.mp4"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "link.mp4"
    link.symlink_to(target)
    with AtomicPath(link) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".real.") and tmp.suffix == ".mp4"
        assert tmp.exists()  # reserved, so that no one else takes the name
        tmp.write_bytes(b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640 and leftovers(tmp_path) == []


def test_atomic_path_commit_abort_and_errors(tmp_path: Path) -> None:
    new = AtomicPath(tmp_path / "a.csv")
    new.tmp.write_text("x")
    new.commit()
    new.abort()  # after a commit: nothing to undo
    assert (tmp_path / "a.csv").read_text() == "x"
    gone = AtomicPath(tmp_path / "b.csv")
    gone.abort()
    assert not (tmp_path / "b.csv").exists() and leftovers(tmp_path) == []
    with pytest.raises(OutputError, match=f"{tmp_path / 'missing' / 'c.csv'}: cannot write"):
        AtomicPath(tmp_path / "missing" / "c.csv")
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "d.csv", "a"):
        pass
