"""Face boxes and face crops exactly as the Go service makes them (models/facedetector.go and
analyzers/attire.go): UltraFace RFB-320 with letterbox, score >= 0.7, min face 3% of the frame
height, hard NMS at IoU 0.4; then a square crop around the box (see crop())."""
import numpy as np
import cv2
import onnxruntime as ort

W, H = 320, 240
SCORE, NMS_IOU, MIN_FACE = 0.7, 0.4, 0.03


class FaceDetector:
    def __init__(self, path):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self.s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def detect(self, img):
        """img: BGR uint8. Returns [(x, y, w, h, score)] in pixels, best first."""
        h, w = img.shape[:2]
        s = min(W / w, H / h)
        cw, ch = max(1, min(W, int(w * s + 0.5))), max(1, min(H, int(h * s + 0.5)))
        px, py = (W - cw) // 2, (H - ch) // 2
        interp = cv2.INTER_AREA if (w > 2 * cw or h > 2 * ch) else cv2.INTER_LINEAR
        r = cv2.resize(img, (cw, ch), interpolation=interp)
        x = np.zeros((H, W, 3), np.float32)
        x[py:py + ch, px:px + cw] = (r[:, :, ::-1].astype(np.float32) - 127) / 128
        scores, boxes = self.s.run(["scores", "boxes"], {"input": x.transpose(2, 0, 1)[None]})
        sc, bx = scores[0, :, 1], boxes[0]
        sx, sy = w / cw, h / ch
        x1 = np.clip((bx[:, 0] * W - px) * sx, 0, w)
        y1 = np.clip((bx[:, 1] * H - py) * sy, 0, h)
        x2 = np.clip((bx[:, 2] * W - px) * sx, 0, w)
        y2 = np.clip((bx[:, 3] * H - py) * sy, 0, h)
        ok = (sc >= SCORE) & (x2 - x1 >= 1) & (y2 - y1 >= max(1, MIN_FACE * h))
        cand = sorted(np.nonzero(ok)[0], key=lambda i: -sc[i])
        keep = []
        for i in cand:
            b = (x1[i], y1[i], x2[i] - x1[i], y2[i] - y1[i], float(sc[i]))
            if all(iou(b, k) <= NMS_IOU for k in keep):
                keep.append(b)
        return keep


def iou(a, b):
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def crop_rect(box, margin, img_w, img_h):
    """Integer square (x0, y0, s) around the face box, margin x its longest side; None when it
    misses the image. Same arithmetic as analyzers/attire.go cropRect (Go's math.Round rounds half
    away from zero: so does round_half_away)."""
    x, y, w, h = box[:4]
    s = max(w, h) * margin
    x0 = round_half_away(x + w / 2 - s / 2)
    y0 = round_half_away(y + h / 2 - s / 2)
    s = max(2, round_half_away(s))
    if x0 >= img_w or y0 >= img_h or x0 + s <= 0 or y0 + s <= 0:
        return None
    return x0, y0, s


def round_half_away(v):
    return int(np.sign(v) * np.floor(abs(v) + 0.5))


def crop(img, box, side, margin):
    """side x side BGR crop of the square around box (in img pixels): the part outside the frame
    is filled by replicating the border, then INTER_AREA down (INTER_LINEAR up), as in
    analyzers/attire.go."""
    ih, iw = img.shape[:2]
    r = crop_rect(box, margin, iw, ih)
    if r is None:
        return None
    x0, y0, s = r
    ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(iw, x0 + s), min(ih, y0 + s)
    roi = img[iy0:iy1, ix0:ix1]
    sq = cv2.copyMakeBorder(roi, iy0 - y0, y0 + s - iy1, ix0 - x0, x0 + s - ix1, cv2.BORDER_REPLICATE)
    return cv2.resize(sq, (side, side), interpolation=cv2.INTER_AREA if s > side else cv2.INTER_LINEAR)


# ---- aligned crops, as the "landmarks" analyzer makes them (models/landmarks.go, models/align.go)

ALIGNED = 112
ARCFACE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                    [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)


class Aligner:
    """faceplugin-landmarks68 on the detector box (stretched to 64x64, grey, pixel/256), five
    points, similarity transform to the ArcFace template, 112x112 warp with black outside."""

    def __init__(self, path):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self.s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def landmarks(self, img, box):
        ih, iw = img.shape[:2]
        x, y, w, h = box[:4]
        x0, y0 = max(0, int(x)), max(0, int(y))
        x1, y1 = min(iw, int(x + w + 0.5)), min(ih, int(y + h + 0.5))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        r = cv2.resize(img[y0:y1, x0:x1], (64, 64), interpolation=cv2.INTER_LINEAR)
        g = cv2.cvtColor(r, cv2.COLOR_BGR2GRAY).astype(np.float32) / 256
        out = self.s.run(None, {"input": g[None, None]})[0].reshape(68, 2)
        return np.stack([x0 + out[:, 0] * (x1 - x0), y0 + out[:, 1] * (y1 - y0)], 1)

    @staticmethod
    def five(l):
        m = lambda *i: l[list(i)].mean(0)
        return np.array([m(37, 38, 40, 41), m(43, 44, 46, 47), l[30], m(48, 60), m(54, 64)], np.float64)

    @staticmethod
    def similarity(pts):
        p, q = pts.mean(0), ARCFACE.mean(0)
        d, t = pts - p, ARCFACE - q
        den = (d ** 2).sum()
        if not den > 1e-6:
            return None
        a = (d[:, 0] * t[:, 0] + d[:, 1] * t[:, 1]).sum() / den
        b = (d[:, 0] * t[:, 1] - d[:, 1] * t[:, 0]).sum() / den
        return np.array([[a, -b, q[0] - (a * p[0] - b * p[1])], [b, a, q[1] - (b * p[0] + a * p[1])]])

    def align(self, img, box):
        l = self.landmarks(img, box)
        if l is None:
            return None
        m = self.similarity(self.five(l))
        if m is None:
            return None
        return cv2.warpAffine(img, m, (ALIGNED, ALIGNED))  # INTER_LINEAR, black border: as gocv.WarpAffine
