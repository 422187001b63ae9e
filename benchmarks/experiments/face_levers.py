"""Three cheap levers on the shipped face model, measured on the transfer score (issue 27).

    nice -n 10 .venv/bin/python benchmarks/experiments/face_levers.py [RUN] [--int8 MODEL]

1. Logit adjustment baked into the model: ``tau * log(training-set class prior)`` subtracted from
   the bias of the final Dense layer (the softmax's logits), tau in 0.1 .. 1.0
   (``edgeemo.train.logit_adjust.adjust_final_bias``; checked below to give the same decisions as
   subtracting from the log-probabilities, which is how all taus are scored at once).
2. Eye-level (roll) alignment of the camera crop: BlazeFace's two eye keypoints, the frame rotated
   about the box centre so the eyes are level, then THE crop (``crop_face``, default margin).
   CK+ and FER2013 are already 48x48 crops (no detector): alignment cannot touch them.
3. Mirror test-time averaging: the mean of the probabilities of a face and its left-right mirror
   (``align_mirror_int8_tw_only``: both on the Taiwanese photos; the other sets there are plain).

Sets (the selection rule of face_transfer_attempts.md): FER2013 validation (the run's split.json,
split seed 0), CK+ held-out subjects (30%, seed 0: 279 faces), Taiwanese development photos
(performers 01-09, 368 full frames) through THE detect -> crop (default detector BlazeFace,
default margin ``DEFAULT_FACE_MARGIN`` = 0; no face = wrong). FER2013 PublicTest is reported.
Keras float for the run; ``--int8`` also scores a LiteRT model (default: the shipped ``face``)
for levers 2 and 3. Writes ``face_levers.json`` to ``--out-dir``; the table goes into
face_transfer_attempts.md by hand. Needs TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np

from edgeemo.camera_bench import load_photos, read_image_color
from edgeemo.face import FacePreprocessing, preprocess_faces
from edgeemo.face_datasets import load_faces
from edgeemo.face_detect import (
    DEFAULT_FACE_MARGIN,
    BlazeFaceDetector,
    Box,
    DetectorSettings,
    crop_face,
    detect_faces,
    face_in_frame,
)
from edgeemo.labels import EMOTIONS
from edgeemo.splits import group_split
from edgeemo.train.options import EXTRA_TEST_FRACTION

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
TAUS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def eye_keypoints(detector: BlazeFaceDetector, frame: np.ndarray, detect_width: int) -> np.ndarray | None:
    """The two eye keypoints (x, y in frame pixels, image-left eye first) of the most confident face,
    the face ``detect_faces`` returns first (NMS keeps the top-scoring box). Re-runs BlazeFace on the
    same shrunk frame and reads keypoints 0 and 1 of the top anchor."""
    h, w = frame.shape[:2]
    scale = detect_width / w if 0 < detect_width < w else 1.0
    small = frame if scale == 1.0 else cv2.resize(frame, (detect_width, max(1, round(h * scale))),
                                                  interpolation=cv2.INTER_AREA)
    if not detector.detect(small):
        return None
    raw = detector.interpreter.get_tensor(detector._boxes)[0]
    logits = detector.interpreter.get_tensor(detector._scores)[0, :, 0]
    top = int(np.argmax(logits))
    sh, sw = small.shape[:2]
    side = max(sh, sw)
    top_pad, left_pad = (side - sh) // 2, (side - sw) // 2
    kp = raw[top, 4:8].reshape(2, 2) / detector.SIZE + detector.anchors[top]
    kp = kp * side - np.array([left_pad, top_pad])
    kp = kp / scale
    return kp[np.argsort(kp[:, 0])]


def roll_aligned_crop(frame: np.ndarray, box: Box, eyes: np.ndarray, margin: float = DEFAULT_FACE_MARGIN
                      ) -> np.ndarray:
    """THE crop of ``box`` from the frame rotated about the box centre so that the eyes are level."""
    (ax, ay), (bx, by) = eyes
    angle = math.degrees(math.atan2(by - ay, bx - ax))
    centre = (box.x + box.w / 2.0, box.y + box.h / 2.0)
    rot = cv2.getRotationMatrix2D(centre, angle, 1.0)
    turned = cv2.warpAffine(frame, rot, (frame.shape[1], frame.shape[0]), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return crop_face(turned, box, margin)


def recalls(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {EMOTIONS[c]: round(float((pred[y == c] == c).mean()), 4) for c in range(len(EMOTIONS)) if (y == c).any()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, default=ROOT / "runs" / "face-eq-cam-ck")
    parser.add_argument("--int8", default="face", help="LiteRT/ONNX face model also scored (levers 2, 3)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "experiments")
    args = parser.parse_args()

    import keras

    from edgeemo.predict import open_face_model
    from edgeemo.train.ensemble import split_faces
    from edgeemo.train.logit_adjust import adjust_final_bias, training_prior

    run = args.run
    config = json.loads((run / "config.json").read_text())
    pre = FacePreprocessing.from_dict(config["preprocessing"])
    model = keras.models.load_model(run / "best.keras", compile=False)
    int8 = open_face_model(args.int8)
    canon = np.asarray(int8.canonical_index)

    def keras_probs(images: list[np.ndarray]) -> np.ndarray:
        return model.predict(preprocess_faces(images, pre), batch_size=512, verbose=0)

    def int8_probs(images: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(images), len(EMOTIONS)))
        out[:, canon] = int8.predict(preprocess_faces(images, int8.preprocessing))
        return out

    def mirrored(images: list[np.ndarray]) -> list[np.ndarray]:
        return [np.ascontiguousarray(im[:, ::-1]) for im in images]

    sets = split_faces(config, json.loads((run / "split.json").read_text()), run, ("val", "test"))
    ck = load_faces(DATA / "ckplus" / "CK+48")
    _, ck_held = group_split(ck.groups, EXTRA_TEST_FRACTION, 0)  # the CK+ subjects train face --extra-train holds out
    sets["ck"] = ([ck.images[i] for i in ck_held], ck.labels[ck_held])

    photos = load_photos(DATA / "taiwanese-faces")
    s = DetectorSettings()
    detector = BlazeFaceDetector()
    frames = [read_image_color(p) for p in photos.paths]
    plain, aligned, angles = [], [], []
    for f in frames:
        boxes = detect_faces(f, detector, s.detect_width)
        if not boxes:
            plain.append(None)
            aligned.append(None)
            continue
        plain.append(crop_face(f, boxes[0], s.face_margin))
        eyes = eye_keypoints(detector, f, s.detect_width)
        angles.append(math.degrees(math.atan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0])))
        aligned.append(roll_aligned_crop(f, boxes[0], eyes, s.face_margin))
    found = np.array([c is not None for c in plain])
    tw_y = photos.labels

    def tw(probs_fn, crops) -> np.ndarray:
        p = np.full((len(crops), len(EMOTIONS)), 1.0 / len(EMOTIONS))
        p[found] = probs_fn([c for c in crops if c is not None])
        return p

    prior = training_prior(config)
    log_prior = np.log(prior)
    # float Keras probabilities, plain and mirrored
    P = {"val": keras_probs(sets["val"][0]), "ck": keras_probs(sets["ck"][0]), "test": keras_probs(sets["test"][0]),
         "tw": tw(keras_probs, plain)}
    PM = {"val": keras_probs(mirrored(sets["val"][0])), "ck": keras_probs(mirrored(sets["ck"][0])),
          "test": keras_probs(mirrored(sets["test"][0])), "tw": tw(lambda ims: keras_probs(mirrored(ims)), plain)}
    Y = {"val": sets["val"][1], "ck": sets["ck"][1], "test": sets["test"][1], "tw": tw_y}

    def evaluate(probs: dict[str, np.ndarray], tau: float = 0.0) -> dict:
        out: dict = {}
        for k, p in probs.items():
            pred = (np.log(np.clip(p, 1e-12, 1.0)) - tau * log_prior).argmax(1)
            if k == "tw":
                pred = np.where(found, pred, -1)
            out[k] = {"acc": round(float((pred == Y[k]).mean()), 4), "recall": recalls(pred, Y[k])}
        out["score"] = round((out["val"]["acc"] + out["ck"]["acc"] + out["tw"]["acc"]) / 3, 4)
        return out

    def shown(path: Path) -> str:
        path = Path(path).absolute()
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)

    result: dict = {"run": shown(run), "int8_model": shown(int8.path),
                    "prior": dict(zip(EMOTIONS, prior.round(5).tolist(), strict=True)),
                    "taiwanese_no_face": int((~found).sum()), "margin": s.face_margin, "detector": "blazeface"}
    result["logit_adjust_float"] = {str(t): evaluate(P, t) for t in TAUS}
    # the bias-baked model decides as the log-probability shift does (check on the Taiwanese crops, tau 0.5)
    baked = keras.models.clone_model(model)
    baked.set_weights(model.get_weights())
    adjust_final_bias(baked, 0.5, prior)
    x_tw = preprocess_faces([c for c in plain if c is not None], pre)
    shifted = (np.log(np.clip(P["tw"][found], 1e-12, 1)) - 0.5 * log_prior).argmax(1)
    result["bias_check_agreement"] = float((baked.predict(x_tw, verbose=0).argmax(1) == shifted).mean())

    # alignment (Taiwanese only: the other sets have no detector) and mirror averaging
    PA = dict(P, tw=tw(keras_probs, aligned))
    result["align_float"] = evaluate(PA)
    result["roll_angles_deg"] = {"median_abs": round(float(np.median(np.abs(angles))), 2),
                                 "p90_abs": round(float(np.percentile(np.abs(angles), 90)), 2)}
    result["mirror_float"] = evaluate({k: (P[k] + PM[k]) / 2 for k in P})

    # the int8 model (LiteRT): plain, aligned, mirror
    Q = {"val": int8_probs(sets["val"][0]), "ck": int8_probs(sets["ck"][0]), "test": int8_probs(sets["test"][0]),
         "tw": tw(int8_probs, plain)}
    QM = {"val": int8_probs(mirrored(sets["val"][0])), "ck": int8_probs(mirrored(sets["ck"][0])),
          "test": int8_probs(mirrored(sets["test"][0])), "tw": tw(lambda ims: int8_probs(mirrored(ims)), plain)}
    result["int8"] = evaluate(Q)
    result["align_int8"] = evaluate(dict(Q, tw=tw(int8_probs, aligned)))
    result["mirror_int8"] = evaluate({k: (Q[k] + QM[k]) / 2 for k in Q})

    # paired view of alignment on the Taiwanese photos (int8): photos it fixes and photos it breaks
    q_plain = np.where(found, Q["tw"].argmax(1), -1) == tw_y
    q_align = np.where(found, tw(int8_probs, aligned).argmax(1), -1) == tw_y
    result["align_int8_paired"] = {"fixed": int((~q_plain & q_align).sum()), "broken": int((q_plain & ~q_align).sum())}
    result["align_mirror_int8_tw_only"] = evaluate(dict(Q, tw=(tw(int8_probs, aligned)
                                                            + tw(lambda ims: int8_probs(mirrored(ims)), aligned)) / 2))
    t0 = time.perf_counter()
    for f in frames[:100]:
        boxes = detect_faces(f, detector, s.detect_width)
        crop_face(f, boxes[0], s.face_margin)
    t1 = time.perf_counter()
    for f in frames[:100]:
        boxes = detect_faces(f, detector, s.detect_width)
        roll_aligned_crop(f, boxes[0], eye_keypoints(detector, f, s.detect_width), s.face_margin)
    t2 = time.perf_counter()
    result["align_cost_ms_per_photo"] = {
        "plain": round((t1 - t0) * 10, 2), "aligned_full_frame_warp": round((t2 - t1) * 10, 2),
        "frame_size": list(frames[0].shape[:2]), "note": "aligned re-runs the detector once here"}

    # alignment on 48x48 faces re-detected on a canvas: CK+ held-out subjects and FER2013 PublicTest,
    # each face upscaled x3 into a 320x240 mid-gray frame; the faces found both ways are compared
    def on_canvas(images: list[np.ndarray]) -> tuple[np.ndarray, list, list]:
        ok, crops_plain, crops_aligned = [], [], []
        for im in images:
            frame = cv2.cvtColor(face_in_frame(im), cv2.COLOR_GRAY2BGR)
            boxes = detect_faces(frame, detector, s.detect_width)
            ok.append(bool(boxes))
            if boxes:
                crops_plain.append(crop_face(frame, boxes[0], s.face_margin))
                crops_aligned.append(roll_aligned_crop(frame, boxes[0], eye_keypoints(detector, frame, s.detect_width),
                                                       s.face_margin))
        return np.array(ok), crops_plain, crops_aligned

    result["canvas"] = {}
    for key, (images, y) in (("ck", sets["ck"]), ("test", sets["test"])):
        ok, cp, ca = on_canvas(images)
        yk = np.asarray(y)[ok]
        a_plain = float((canon[int8.predict(preprocess_faces(cp, int8.preprocessing)).argmax(1)] == yk).mean())
        a_align = float((canon[int8.predict(preprocess_faces(ca, int8.preprocessing)).argmax(1)] == yk).mean())
        result["canvas"][key] = {"faces": len(images), "found": int(ok.sum()), "int8_plain": round(a_plain, 4),
                                 "int8_aligned": round(a_align, 4)}
    print(json.dumps({k: result[k] for k in ("align_int8_paired", "align_cost_ms_per_photo", "canvas")}))

    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "face_levers.json").write_text(json.dumps(result, indent=1))
    for key, r in result.items():
        if isinstance(r, dict) and "score" in r:
            rows = {key: r}
        elif key == "logit_adjust_float":
            rows = {f"tau {t}": v for t, v in r.items()}
        else:
            continue
        for name, v in rows.items():
            print(f"{name:16s} val {v['val']['acc']:.4f} ck {v['ck']['acc']:.4f} tw {v['tw']['acc']:.4f} "
                  f"score {v['score']:.4f} test {v['test']['acc']:.4f} | tw fear {v['tw']['recall']['fear']:.2f} "
                  f"disgust {v['tw']['recall']['disgust']:.2f} | ck fear {v['ck']['recall']['fear']:.2f} "
                  f"disgust {v['ck']['recall']['disgust']:.2f}")
    print(json.dumps({k: result[k] for k in ("prior", "taiwanese_no_face", "bias_check_agreement", "roll_angles_deg")}))


if __name__ == "__main__":
    main()
