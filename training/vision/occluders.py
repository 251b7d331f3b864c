"""Synthetic face occlusions for the "occluded" head: no real data set of faces covered by hands or
objects exists in the project (../shared/data/faces/occlusion has 3 photos, kept for evaluation).
Each function draws on a copy of a full frame around a face box (x, y, w, h) and returns it; the
aligned crop is then made from the edited frame, so the landmark model sees the occluder the way
it would in a real frame.

Occluders are deliberately not mask-like (no uniform band across the lower face from cheek to
cheek): the mask head is trained with them as "no mask"."""
import numpy as np
import cv2


def _skin(img, box, rng):
    x, y, w, h = [int(v) for v in box[:4]]
    reg = img[max(0, y + h // 2):max(1, y + 3 * h // 4), max(0, x + w // 4):max(1, x + 3 * w // 4)]
    c = np.median(reg.reshape(-1, 3), 0) if reg.size else np.array([120, 140, 180])
    return np.clip(c * rng.uniform(0.8, 1.15) + rng.normal(0, 8, 3), 0, 255)


def hand(img, box, rng):
    """A skin-coloured palm with fingers over the mouth, nose, an eye or a cheek."""
    out = img.copy()
    x, y, w, h = box[:4]
    col = _skin(img, box, rng)
    where = rng.choice(["mouth", "mouth", "nose", "eye", "cheek", "chin"])
    cy = {"mouth": 0.78, "nose": 0.6, "eye": 0.4, "cheek": 0.62, "chin": 0.92}[where]
    cx = 0.5 + (rng.uniform(-0.3, 0.3) if where in ("eye", "cheek") else rng.uniform(-0.12, 0.12))
    if where == "eye":
        cx = rng.choice([0.3, 0.7]) + rng.uniform(-0.08, 0.08)
    c = (x + cx * w, y + cy * h)
    pw, ph = w * rng.uniform(0.28, 0.42), h * rng.uniform(0.18, 0.3)
    ang = rng.uniform(-50, 50) + (90 if rng.random() < 0.3 else 0)
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.ellipse(mask, (int(c[0]), int(c[1])), (max(2, int(pw)), max(2, int(ph))), ang, 0, 360, 255, -1)
    # Fingers: thick rounded strokes leaving the palm on one side.
    t = np.deg2rad(ang + rng.choice([0, 180]))
    nf = rng.integers(3, 5)
    fw = max(2, int(w * rng.uniform(0.07, 0.1)))
    for k in range(nf):
        off = (k - (nf - 1) / 2) * fw * 1.1
        sx = c[0] + np.cos(t) * pw * 0.7 - np.sin(t) * off
        sy = c[1] + np.sin(t) * pw * 0.7 + np.cos(t) * off
        L = w * rng.uniform(0.25, 0.4)
        cv2.line(mask, (int(sx), int(sy)), (int(sx + np.cos(t) * L), int(sy + np.sin(t) * L)), 255, fw, cv2.LINE_AA)
    # Real skin texture: the face's own cheek, stretched over the hand, tinted a little.
    xi, yi, wi, hi = [int(v) for v in box[:4]]
    cheek = img[max(0, yi + int(0.55 * hi)):max(1, yi + int(0.75 * hi)), max(0, xi + int(0.25 * wi)):max(1, xi + int(0.75 * wi))]
    _paint(out, mask, col, rng, texture=cheek if cheek.size and rng.random() < 0.7 else None)
    return out


def obj(img, box, rng, others):
    """A patch of another photo (cloth, a room, a book...) in a rectangle or ellipse, over a
    quarter to a half of the face; or a dark phone/microphone-like bar held upright."""
    out = img.copy()
    x, y, w, h = box[:4]
    H, W = img.shape[:2]
    mask = np.zeros((H, W), np.uint8)
    if rng.random() < 0.35:
        # Upright dark object (phone at the ear, microphone at the mouth).
        bw, bh = w * rng.uniform(0.18, 0.3), h * rng.uniform(0.5, 0.9)
        cx = x + w * rng.choice([rng.uniform(0.05, 0.3), rng.uniform(0.7, 0.95), rng.uniform(0.4, 0.6)])
        cy = y + h * rng.uniform(0.55, 0.85)
        r = ((cx, cy), (bw, bh), rng.uniform(-25, 25))
        cv2.fillPoly(mask, [cv2.boxPoints(r).astype(np.int32)], 255)
        col = rng.uniform(10, 70, 3)
        _paint(out, mask, col, rng)
        return out
    bw, bh = w * rng.uniform(0.45, 0.8), h * rng.uniform(0.35, 0.6)
    cx, cy = x + w * rng.uniform(0.25, 0.75), y + h * rng.uniform(0.25, 0.75)
    if rng.random() < 0.5:
        cv2.rectangle(mask, (int(cx - bw / 2), int(cy - bh / 2)), (int(cx + bw / 2), int(cy + bh / 2)), 255, -1)
    else:
        cv2.ellipse(mask, (int(cx), int(cy)), (max(2, int(bw / 2)), max(2, int(bh / 2))), rng.uniform(0, 180), 0, 360, 255, -1)
    src = others[rng.integers(len(others))]
    sh, sw = src.shape[:2]
    # A small region blown up: a texture (cloth, wall, wood), too small to hold a whole face.
    z = rng.uniform(2, 4)
    pw, ph = max(8, min(sw, int(bw / z))), max(8, min(sh, int(bh / z)))
    sx, sy = rng.integers(0, max(1, sw - pw + 1)), rng.integers(0, max(1, sh - ph + 1))
    tex = cv2.resize(src[sy:sy + ph, sx:sx + pw], (int(bw) + 2, int(bh) + 2))
    x0, y0 = int(cx - bw / 2), int(cy - bh / 2)
    layer = out.copy()
    xs0, ys0 = max(0, x0), max(0, y0)
    xs1, ys1 = min(W, x0 + tex.shape[1]), min(H, y0 + tex.shape[0])
    if xs1 > xs0 and ys1 > ys0:
        layer[ys0:ys1, xs0:xs1] = tex[ys0 - y0:ys1 - y0, xs0 - x0:xs1 - x0]
    m = cv2.GaussianBlur(mask, (0, 0), max(0.5, w * 0.01)).astype(np.float32)[..., None] / 255
    out[:] = (layer * m + out * (1 - m)).astype(np.uint8)
    return out


def edge(img, box, rng):
    """The frame ends across the face: 30-60% of the box is outside the image."""
    x, y, w, h = [float(v) for v in box[:4]]
    H, W = img.shape[:2]
    f = rng.uniform(0.3, 0.6)
    side = rng.choice(["left", "right", "top", "bottom"])
    if side == "left":
        x0 = int(min(W - 2, x + f * w))
        return img[:, x0:].copy(), (x - x0, y, w, h)
    if side == "right":
        return img[:, :max(2, int(x + (1 - f) * w))].copy(), (x, y, w, h)
    if side == "top":
        y0 = int(min(H - 2, y + f * h * 0.7))
        return img[y0:, :].copy(), (x, y - y0, w, h)
    return img[:max(2, int(y + (1 - f * 0.8) * h)), :].copy(), (x, y, w, h)


def _paint(out, mask, col, rng, texture=None):
    """Fills mask with col (or texture, stretched) plus a soft shading gradient and noise, with
    feathered edges."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return
    H, W = mask.shape
    pad = 4
    x0, y0 = max(0, xs.min() - pad), max(0, ys.min() - pad)
    x1, y1 = min(W, xs.max() + pad + 1), min(H, ys.max() + pad + 1)
    m = mask[y0:y1, x0:x1]
    roi = out[y0:y1, x0:x1]
    gx, gy = rng.normal(0, 0.4, 2)
    yy, xx = np.mgrid[0:y1 - y0, 0:x1 - x0].astype(np.float32)
    span = max(x1 - x0, y1 - y0, 1)
    shade = 1 + 0.35 * ((xx - xx.mean()) * gx + (yy - yy.mean()) * gy) / span
    if texture is not None:
        base = cv2.resize(texture, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        base = base * rng.uniform(0.85, 1.1, 3)[None, None, :]
    else:
        base = np.broadcast_to(col[None, None, :], (y1 - y0, x1 - x0, 3))
    fill = np.clip(base * shade[..., None] + rng.normal(0, 4, (y1 - y0, x1 - x0, 1)), 0, 255)
    a = cv2.GaussianBlur(m, (0, 0), max(0.6, span * 0.02)).astype(np.float32)[..., None] / 255
    roi[:] = (fill * a + roi * (1 - a)).astype(np.uint8)
