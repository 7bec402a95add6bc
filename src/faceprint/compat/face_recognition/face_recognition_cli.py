"""``face_recognition KNOWN_PEOPLE_FOLDER IMAGE_TO_CHECK``: face_recognition 1.3.0's command, with the same
arguments and output lines (``file,name``; with ``--show-distance 1``, ``file,name,distance``).

Each photo in the known folder is a person named after the file. Every face of the image (or of each
image in the folder) to check gets a line for each known person within ``--tolerance``, else
``unknown_person``; an image without faces gets ``no_persons_found``. With ``--cpus`` other than 1 the
photos are encoded on faceprint's worker pool, and the lines still come in folder order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import click
import numpy as np
import PIL.Image

from faceprint.compat.face_recognition import api
from faceprint.compat.face_recognition._cli import CPUS_HELP, image_files_in_folder, images_to_check, map_in_order

#: an image to check larger than this is shrunk to fit first, as 1.3.0 does (known photos are not)
MAX_SIDE = 1600

#: (path, whether it is an image to check rather than a known person's photo)
Item = tuple[str, bool]


def _encode(item: Item) -> list[np.ndarray]:
    path, to_check = item
    image = api.load_image_file(path)
    if to_check and max(image.shape) > MAX_SIDE:
        shrunk = PIL.Image.fromarray(image)
        shrunk.thumbnail((MAX_SIDE, MAX_SIDE), PIL.Image.LANCZOS)
        image = np.array(shrunk)
    return api.face_encodings(image)


def _make_encoder() -> Callable[[Item], list[np.ndarray]]:
    api._load_models()
    return _encode


def _line(path: str, name: str, distance: float | None, show_distance: bool) -> str:
    return f"{path},{name},{distance}" if show_distance else f"{path},{name}"


def _answers(
    path: str,
    encodings: list[np.ndarray],
    names: Sequence[str],
    known: Sequence[np.ndarray],
    tolerance: float,
    show_distance: bool,
) -> list[str]:
    """The lines for one image to check."""
    if not encodings:
        return [_line(path, "no_persons_found", None, show_distance)]
    lines = []
    for encoding in encodings:
        distances = api.face_distance(known, encoding)
        matches = [_line(path, n, d, show_distance) for n, d in zip(names, distances) if d <= tolerance]
        lines += matches or [_line(path, "unknown_person", None, show_distance)]
    return lines


@click.command()
@click.argument("known_people_folder")
@click.argument("image_to_check")
@click.option("--cpus", default=1, help=CPUS_HELP)
@click.option(
    "--tolerance",
    default=0.6,
    help="Largest face distance that counts as a match (default 0.6). Lower it if a face matches several people.",
)
@click.option(
    "--show-distance", default=False, type=bool, help="Print each match's face distance too (to choose a tolerance)."
)
def main(known_people_folder: str, image_to_check: str, cpus: int, tolerance: float, show_distance: bool) -> None:
    """Name the faces of IMAGE_TO_CHECK (an image or a folder) after the people of KNOWN_PEOPLE_FOLDER."""
    items = [(f, False) for f in image_files_in_folder(known_people_folder)]
    items += [(f, True) for f in images_to_check(image_to_check)]
    names: list[str] = []
    known: list[np.ndarray] = []
    # the known photos come first, so every one of them is in before the first image is checked
    for (path, to_check), encodings in map_in_order(_make_encoder, items, cpus):
        if to_check:
            for line in _answers(path, encodings, names, known, tolerance, show_distance):
                click.echo(line)
            continue
        if len(encodings) > 1:
            click.echo(f"WARNING: More than one face found in {path}. Only considering the first face.")
        if not encodings:
            click.echo(f"WARNING: No faces found in {path}. Ignoring file.")
        else:
            names.append(os.path.splitext(os.path.basename(path))[0])
            known.append(encodings[0])


if __name__ == "__main__":
    # run the command under the module's importable name, where worker processes find its functions
    from faceprint.compat.face_recognition import face_recognition_cli

    face_recognition_cli.main()
