"""Boxes and labels: inside the image, off the other faces, off each other; face crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.draw import DEFAULT_COLOR, _place_labels, crop_face, draw_faces

RED = (255, 0, 0)


def label_pixels(image: np.ndarray, boxes: list, labels: list) -> np.ndarray:
    """Where the labels (and only they) changed the picture."""
    return np.any(draw_faces(image, boxes, labels) != draw_faces(image, boxes), axis=2)


def inside(mask: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """How many marked pixels lie strictly inside a box (its outline excluded)."""
    left, top, right, bottom = box
    return int(mask[top + 3 : bottom - 2, left + 3 : right - 2].sum())


def placed_rects(boxes: list, labels: list, shape: tuple[int, int, int]) -> list[tuple[int, int, int, int]]:
    return [spot.rect for spot in _place_labels(boxes, labels, shape, 0.4) if spot is not None]


def overlaps(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_draws_a_copy_with_boxes_in_the_given_colours() -> None:
    image = np.zeros((200, 300, 3), np.uint8)
    out = draw_faces(image, [(50, 60, 150, 160), (200, 60, 280, 140)], ["a", None], colors=[RED, (0, 0, 255)])
    assert out.shape == image.shape and out.dtype == np.uint8 and not image.any()  # the input is untouched
    assert tuple(out[100, 50]) == RED and tuple(out[100, 200]) == (0, 0, 255)
    assert tuple(draw_faces(image, [(50, 60, 150, 160)])[100, 50]) == DEFAULT_COLOR
    assert not draw_faces(image, []).any()
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        draw_faces(image, [(0, 0, 10, 10), (20, 20, 30, 30)], ["x"])


@pytest.mark.parametrize(
    ("box", "where"),
    [
        ((100, 100, 180, 180), "above"),
        ((100, 0, 180, 80), "below"),  # no room above
        ((0, 0, 300, 200), "inside"),  # the face fills the picture
        ((250, 150, 300, 200), "above"),  # bottom-right corner: shifted left to stay in the picture
    ],
)
def test_label_goes_above_else_below_else_inside_and_stays_in_the_picture(box: tuple, where: str) -> None:
    image = np.zeros((200, 300, 3), np.uint8)
    mask = label_pixels(image, [box], ["lin-manuel-miranda #12 0.97"])
    ys, xs = np.nonzero(mask)
    assert len(ys) > 50
    left, top, right, bottom = box
    if where == "above":
        assert ys.max() < top
    elif where == "below":
        assert ys.min() > bottom - 2
    else:
        assert top <= ys.min() and ys.max() <= bottom
    assert xs.max() < 300 and ys.max() < 200  # nothing cut off at the edge (drawing would clip it)
    assert xs.min() > 0 or left == 0


def test_crowd_labels_cover_no_other_face_and_no_other_label() -> None:
    """A 6 x 3 grid of 40 px faces, 28 px apart: room enough between rows for small labels."""
    image = np.full((400, 640, 3), 90, np.uint8)
    boxes = [(20 + 100 * c, 40 + 110 * r, 60 + 100 * c, 80 + 110 * r) for r in range(3) for c in range(6)]
    labels = [f"unknown-{k + 1} #{k + 3} 0.9{k % 10}" for k in range(len(boxes))]
    mask = label_pixels(image, boxes, labels)
    for i, box in enumerate(boxes):  # only its own label may touch a face; here none needs to
        assert inside(mask, box) == 0, i
    rects = placed_rects(boxes, labels, image.shape)
    assert len(rects) == len(boxes)
    assert not any(overlaps(a, b) for i, a in enumerate(rects) for b in rects[i + 1 :])
    assert all(r[0] >= 0 and r[1] >= 0 and r[2] <= 640 and r[3] <= 400 for r in rects)


def test_small_faces_get_smaller_text() -> None:
    big, small = (100, 200, 300, 400), (400, 200, 430, 230)
    image = np.zeros((600, 800, 3), np.uint8)
    rects = placed_rects([big, small], ["unknown-1 #1 0.90", "unknown-1 #1 0.90"], image.shape)
    widths = [r[2] - r[0] for r in rects]
    assert widths[1] < 0.75 * widths[0]


def test_crowd_photo(data_dir: Path) -> None:
    """On the dense crowd photo, no label covers a neighbouring face."""
    from faceprint.detect import get_detector
    from faceprint.image import load_image

    pixels = load_image(data_dir / "group_photos" / "retinaface_crowd_test.jpg").pixels
    boxes = [face.box for face in get_detector().detect(pixels)]
    assert len(boxes) >= 10
    labels = [f"unknown-{k + 1} #{k + 1} 0.91" for k in range(len(boxes))]
    mask = label_pixels(pixels, boxes, labels)
    for i, box in enumerate(boxes):
        assert inside(mask, box) == 0, (i, box)
    rects = placed_rects(boxes, labels, pixels.shape)
    assert not any(overlaps(a, b) for i, a in enumerate(rects) for b in rects[i + 1 :])


def test_crop_face_adds_a_margin_and_clips() -> None:
    image = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3).astype(np.uint8)
    crop = crop_face(image, (50, 20, 90, 60), margin=0.25)
    assert crop.shape == (60, 60, 3) and np.array_equal(crop, image[10:70, 40:100])
    crop[:] = 0
    assert image[10:70, 40:100].any()  # a copy
    assert crop_face(image, (0, 0, 40, 40)).shape == (52, 52, 3)  # clipped at the top-left corner
    assert crop_face(image, (180, 80, 200, 100), margin=0).shape == (20, 20, 3)
