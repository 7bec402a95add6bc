"""face_recognition's test images (``tests/test_images`` in its repository, MIT) for the compat tests.

The repository keeps one copy of each: obama, obama2 and biden are demo photos, 32bit.png is a fixture
already, the other three are in ``tests/fixtures/face_recognition/`` (see ``tests/fixtures/SOURCES.md``).
A test gets them as one folder laid out like the original's, as its command-line tests need.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .conftest import DEMO, FIXTURES, shared_data_dir

SUITE_IMAGES: dict[str, Path] = {
    "obama.jpg": DEMO / "gallery" / "obama" / "obama.jpg",
    "obama2.jpg": DEMO / "gallery" / "obama" / "obama2.jpg",
    "biden.jpg": DEMO / "gallery" / "biden" / "biden.jpg",
    "32bit.png": FIXTURES / "32bit.png",
    **{
        name: FIXTURES / "face_recognition" / name
        for name in ("obama3.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg")
    },
}


def suite_folder(folder: Path) -> Path:
    """``folder`` made to hold the seven test images (linked, else copied); the shared data's own folder
    when the repository's copies are missing; a skip when neither is there."""
    if not all(path.is_file() for path in SUITE_IMAGES.values()):
        data = shared_data_dir()
        shared = data / "face_recognition_examples" / "tests" / "test_images" if data else None
        if shared is None or not all((shared / name).is_file() for name in SUITE_IMAGES):
            pytest.skip("face_recognition's test images are missing (tests/fixtures, demo/ and the shared data)")
        return shared
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in SUITE_IMAGES.items():
        try:
            os.symlink(path, folder / name)
        except OSError:  # no symlinks here (some Windows set-ups)
            shutil.copyfile(path, folder / name)
    return folder
