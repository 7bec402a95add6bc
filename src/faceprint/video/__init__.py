"""Faces in video: who appears when, in files, on cameras and in network streams.

>>> from faceprint import Recognizer
>>> from faceprint.video import recognize_video
>>> result = recognize_video("clip.mp4", Recognizer("gallery.db"), every=5)
>>> [(a.identity, a.start_s, a.end_s) for a in result.appearances]

For frame-by-frame control use :class:`VideoRecognizer`: ``frames(source)`` yields a
:class:`FrameResult` per frame (tracked boxes with their current labels) and
``timeline()`` gives the :class:`Appearance` rows. Without a gallery,
:func:`track_templates` gives one :class:`TrackItem` per track (template, time span, best
view), and :func:`enrol_from_video` enrols the person a clip follows.

Facial events (blinks, speaking, expression changes, micro-movements; :class:`FaceEvent` rows):
``recognize_video(..., events=True).events``, or without a gallery :func:`detect_events`;
:class:`EventRecorder` frame by frame.
"""

from faceprint.video.enrol import VideoEnrollResult, VideoView, enrol_from_video
from faceprint.video.events import EventRecorder, detect_events
from faceprint.video.pipeline import (
    Appearance,
    FrameResult,
    Sample,
    TrackItem,
    TrackView,
    VideoRecognizer,
    VideoResult,
    VideoStats,
    VideoTracker,
    recognize_video,
    track_templates,
)
from faceprint.video.reader import Frame, VideoReader, open_video
from faceprint.video.series import FaceEvent, FaceSeries, record_series
from faceprint.video.tracker import IouTracker, KalmanBox, Track, iou_matrix

__all__ = [
    "Appearance",
    "EventRecorder",
    "FaceEvent",
    "FaceSeries",
    "Frame",
    "FrameResult",
    "IouTracker",
    "KalmanBox",
    "Sample",
    "Track",
    "TrackItem",
    "TrackView",
    "VideoEnrollResult",
    "VideoReader",
    "VideoRecognizer",
    "VideoResult",
    "VideoStats",
    "VideoTracker",
    "VideoView",
    "detect_events",
    "enrol_from_video",
    "iou_matrix",
    "open_video",
    "recognize_video",
    "record_series",
    "track_templates",
]
