"""Video recognition speed on a 720p clip, with tracking between detections.

    python benchmarks/video_speed.py                    # first 600 frames of simplefr_Video_2.mp4
    python benchmarks/video_speed.py --full             # the whole clip (1,972 frames) + timeline
    python benchmarks/video_speed.py --every 8 --detect-size 800 --embedder onnx

The gallery is ``videos/simplefr_gallery/*.png``, each enrolled as the person in its file name
(``0008_jessica.png`` -> jessica). Reported: detection interval and size, frames/s end to end
(decoding on its own thread, as ``faceprint video`` runs), frames/s of the recognition loop
alone, detector runs, faces detected and faces embedded, and the timeline.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
try:  # run from a checkout without installing: use the repo's src/
    import faceprint  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))

from faceprint.detect import DEFAULT_DETECTOR  # noqa: E402
from faceprint.embed import DEFAULT_EMBEDDER  # noqa: E402

CLIP = "videos/simplefr_Video_2.mp4"
GALLERY = "videos/simplefr_gallery"


def data_dir(arg: str | None) -> Path:
    for candidate in (arg, os.environ.get("FACEPRINT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / CLIP).is_file():
            return Path(candidate)
    sys.exit(f"{CLIP} not found: pass --data DIR or set FACEPRINT_DATA")


def enroll_crops(rec: Any, files: list[Path]) -> list[str]:
    """Enrol each face crop as the person in its name. The crops are cut tight round the
    face, too tight for HOG's 80 px window with its margin, so a crop where no face is found
    is retried inside a replicated border."""
    import cv2

    from faceprint import FaceprintError, load_image

    names = []
    for path in files:
        name = re.sub(r"^\d+_", "", path.stem)
        pixels = load_image(path).pixels
        side = max(pixels.shape[:2])
        for pad in (0.0, 0.25, 0.5):
            m = int(side * pad)
            image = cv2.copyMakeBorder(pixels, m, m, m, m, cv2.BORDER_REPLICATE) if m else pixels
            try:
                rec.single_face(image, largest=True)
            except FaceprintError:
                continue
            result = rec.enroll(name, [image], largest=True)
            if not result.errors:
                names.append(name)
                break
        else:
            print(f"note: {path.name}: no face found, even with a border; not enrolled", file=sys.stderr)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="shared data folder (holding videos/)")
    parser.add_argument("--video", help=f"video to run (default: DATA/{CLIP})")
    parser.add_argument("--frames", type=int, default=600, help="frames to process (default 600)")
    parser.add_argument("--full", action="store_true", help="process the whole clip")
    parser.add_argument("--every", type=int, default=5, help="run the detector every N frames")
    parser.add_argument("--detect-size", type=int, default=960, help="long side of the detection image")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR)
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    parser.add_argument("--no-flip", action="store_true", help="embed without flip averaging")
    parser.add_argument("--threads", type=int, help="cv2.setNumThreads (default: OpenCV's choice)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    from faceprint import FaceEngine, Gallery, Recognizer
    from faceprint.video import recognize_video

    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    data = data_dir(args.data)
    video = Path(args.video) if args.video else data / CLIP
    with tempfile.TemporaryDirectory() as tmp:
        engine = FaceEngine(detector=args.detector, embedder=args.embedder, flip=not args.no_flip)
        rec = Recognizer(Gallery(Path(tmp) / "gallery.db"), engine)
        enrolled = enroll_crops(rec, sorted((data / GALLERY).glob("*.png")))
        frames = None if args.full else args.frames
        cpu = time.process_time()
        result = recognize_video(video, rec, every=args.every, detect_size=args.detect_size, max_frames=frames)
        cpu = time.process_time() - cpu
    s = result.stats
    print(f"video          {video.name} ({result.frames_read} frames read, source {result.fps or 0:.2f} fps)")
    print(
        f"models         detector {args.detector} (upsample 0) at {args.detect_size} px, "
        f"embedder {args.embedder}{'' if args.no_flip else ' +flip'}"
    )
    print(f"detection      every {args.every} frames + on {s.scene_cuts} scene cuts: {s.detections} runs")
    print(f"faces          {s.faces_detected} detected, {s.faces_embedded} embedded")
    print(f"speed          {s.frames / result.elapsed_s:.1f} frames/s end to end ({result.elapsed_s:.1f} s)")
    print(f"               {s.fps:.1f} frames/s in the recognition loop ({s.seconds:.1f} s)")
    print(f"cpu            {cpu / max(s.frames, 1) * 1000:.1f} ms of CPU per frame, all threads ({cpu:.1f} s)")
    print(f"gallery        {len(enrolled)} people: {', '.join(enrolled)}")
    if result.error:
        print(f"error          {result.error}")
    print(f"\n{'identity':<14} {'track':>5} {'start_s':>8} {'end_s':>8} {'frames':>11} {'score':>6}")
    for a in result.appearances:
        frames_range = f"{a.start_frame}-{a.end_frame}"
        print(f"{a.identity:<14} {a.track_id:>5} {a.start_s:>8.2f} {a.end_s:>8.2f} {frames_range:>11} {a.score:>6.3f}")
    if args.json:
        print(
            json.dumps(
                {
                    "video": video.name,
                    "every": args.every,
                    "detect_size": args.detect_size,
                    "detector": args.detector,
                    "embedder": args.embedder,
                    "flip": not args.no_flip,
                    "frames": s.frames,
                    "fps_end_to_end": round(s.frames / result.elapsed_s, 2),
                    "fps_loop": round(s.fps, 2),
                    "detections": s.detections,
                    "faces_detected": s.faces_detected,
                    "faces_embedded": s.faces_embedded,
                    "cpu_ms_per_frame": round(cpu / max(s.frames, 1) * 1000, 2),
                    "timeline": [a.to_dict() for a in result.appearances],
                }
            )
        )


if __name__ == "__main__":
    main()
