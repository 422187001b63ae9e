"""Face detection for the device: lives in the core (``edgeemo.face_detect``) so that
``edgeemo bench --detect`` scores the daemon's own detect -> crop path; re-exported here."""

from edgeemo.face_detect import (
    BLAZEFACE_MODEL,
    BLAZEFACE_SHA256,
    DETECTORS,
    BlazeFaceDetector,
    Box,
    DetectorSettings,
    HaarFaceDetector,
    crop_face,
    detect_faces,
    find_face,
    make_detector,
)

__all__ = ["BLAZEFACE_MODEL", "BLAZEFACE_SHA256", "DETECTORS", "BlazeFaceDetector", "Box", "DetectorSettings",
           "HaarFaceDetector", "crop_face", "detect_faces", "find_face", "make_detector"]
