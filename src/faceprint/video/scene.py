"""Hard-cut detection, so that a track never jumps from one shot to the next.

Without it, a face that happens to sit where another shot's face sat would inherit its
track (and its identity). A cut changes both the picture (mean absolute difference of a
64x36 grey thumbnail) and its colours (Bhattacharyya distance of hue/saturation
histograms); camera motion and gestures change the first but hardly the second, and
lighting flicker the second but not the first, so both must jump. On the four shared
clips (2,357 frames) the 41 cuts score >= 25 and >= 0.23; other frames reach 17.7 or 0.26
but never both (99th percentiles 12.4 and 0.12). Costs under 1 ms per frame.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB = (64, 36)


class SceneCutDetector:
    def __init__(self, min_pixel_diff: float = 20.0, min_hist_dist: float = 0.2) -> None:
        self.min_pixel_diff = min_pixel_diff
        self.min_hist_dist = min_hist_dist
        self._gray: np.ndarray | None = None
        self._hist: np.ndarray | None = None

    def __call__(self, bgr: np.ndarray) -> bool:
        """True when ``bgr`` starts a new shot (never for the first frame)."""
        # bilinear to 4x the thumbnail, then an area average: a third of the cost of one
        # INTER_AREA resize from 720p (0.6 vs 1.7 ms)
        thumb = cv2.resize(bgr, (THUMB[0] * 4, THUMB[1] * 4), interpolation=cv2.INTER_LINEAR)
        thumb = cv2.resize(thumb, THUMB, interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(thumb, cv2.COLOR_BGR2GRAY).astype(np.float32)
        hsv = cv2.cvtColor(thumb, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
        cv2.normalize(hist, hist)
        cut = False
        if self._gray is not None and self._hist is not None:
            diff = float(np.abs(gray - self._gray).mean())
            if diff >= self.min_pixel_diff:
                cut = cv2.compareHist(hist, self._hist, cv2.HISTCMP_BHATTACHARYYA) >= self.min_hist_dist
        self._gray, self._hist = gray, hist
        return cut

    def reset(self) -> None:
        self._gray = self._hist = None
