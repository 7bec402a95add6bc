"""``face_detection IMAGE_TO_CHECK``: face_recognition 1.3.0's command, with the same arguments and output
lines: ``file,top,right,bottom,left`` for each face of the image (or of each image in the folder).

``--upsample`` (default 0, what 1.3.0 always used) is the option later versions of the original added.
With ``--cpus`` other than 1 the images go to faceprint's worker pool; the lines keep the folder order.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import click

from faceprint.compat.face_recognition import api
from faceprint.compat.face_recognition._cli import CPUS_HELP, images_to_check, map_in_order


def _locate(path: str, model: str, upsample: int) -> list[api.Css]:
    return api.face_locations(api.load_image_file(path), number_of_times_to_upsample=upsample, model=model)


def _make_locator(model: str, upsample: int) -> Callable[[str], list[api.Css]]:
    api._load_models(model, embedder=False)
    return partial(_locate, model=model, upsample=upsample)


@click.command()
@click.argument("image_to_check")
@click.option("--cpus", default=1, help=CPUS_HELP)
@click.option("--model", default="hog", help='Face detector: "hog" (fast) or "cnn" (dlib\'s MMOD CNN: slow on a CPU).')
@click.option("--upsample", default=0, help="How many times to double the image's size first (finds smaller faces).")
def main(image_to_check: str, cpus: int, model: str, upsample: int) -> None:
    """Print the box of every face in IMAGE_TO_CHECK (an image or a folder)."""
    files = images_to_check(image_to_check)
    for path, boxes in map_in_order(partial(_make_locator, model, upsample), files, cpus):
        for top, right, bottom, left in boxes:
            click.echo(f"{path},{top},{right},{bottom},{left}")


if __name__ == "__main__":
    # run the command under the module's importable name, where worker processes find its functions
    from faceprint.compat.face_recognition import face_detection_cli

    face_detection_cli.main()
