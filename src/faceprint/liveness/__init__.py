"""Liveness: is a face a live person in front of the camera, or a photo / screen / mask of one?

>>> import cv2
>>> from faceprint.liveness import PassiveLiveness
>>> PassiveLiveness().score(cv2.imread("selfie.jpg"), (125, 160, 310, 345))  # (left, top, right, bottom)
0.99...
"""

from __future__ import annotations

from faceprint.liveness.passive import PATCH_SIZE, Box, PassiveLiveness, crop_patch, patch_box

__all__ = ["PATCH_SIZE", "Box", "PassiveLiveness", "crop_patch", "patch_box"]
