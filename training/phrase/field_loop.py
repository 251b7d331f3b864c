#!/usr/bin/env python3
"""Plays field sessions (field_sessions.py) through a running proctor service as the exam
platform, then reviews the spotted phrases as a careful reviewer who knows the truth, and exports
the labelled audio (docs/data-loop.md). Standard library only. Run it through field_loop.sh.

    field_loop.py --url URL --ingest-key K --review-key K --data-key K --sessions DIR --export-out DIR

Per session: POST /v1/sessions (id RUN-fNNNN: re-running resumes, the service deduplicates), events
answering_started / question_shown {"question": n} / exam_ended, the audio in chunks
(POST /v1/sessions/{id}/audio?seq=&captured_at=), then GET /v1/sessions/{id}/answers until every
answer is closed or not_closed. Review: a true phrase with no detection ending within ±1 s →
label phrase_missed at its end; a detection with no true phrase (or same-meaning variant, which
also closes an answer) within ±1 s of its end → label not_phrase at the detection's end. Then
POST /v1/exports {"purpose", "kinds": ["audio"]} and GET /v1/exports/{id}/archive, unzipped to
EXPORT_OUT/<export id>.

--offline does the same without a service: `proctor analyze audio` (the service's analyzers, fed
in 1 s chunks) spots the phrases and the export is written here in the same format (snippets 4 s
before to 1 s after, phrase_missed / not_phrase reviewed, other detections unreviewed). Use it to
try retraining before a service is at hand; the service's export is the real thing.
"""
import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import wave
import zipfile

TOL_MS = 1000  # a detection ending within ±1 s of a true phrase's end found it
NEAR_MS = 1500  # export: a detection this close to a reviewer label is that label's item (export/export.go)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


class API:
    def __init__(self, url, timeout=120):
        self.url, self.timeout = url.rstrip("/"), timeout

    def call(self, method, path, key, body=None, ctype=None, raw=False, ok=(200, 201, 202)):
        req = urllib.request.Request(self.url + path, data=body, method=method)
        req.add_header("Authorization", "Bearer " + key)
        if ctype:
            req.add_header("Content-Type", ctype)
        for attempt in range(5):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    data = r.read()
                    status = r.status
                break
            except urllib.error.HTTPError as e:
                data, status = e.read(), e.code
                if status in (429, 502, 503) and attempt < 4:
                    time.sleep(1 + attempt)
                    continue
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if attempt == 4:
                    raise SystemExit(f"{method} {path}: {e}")
                time.sleep(1 + attempt)
        if status not in ok:
            raise SystemExit(f"{method} {path}: HTTP {status}: {data[:500].decode('utf-8', 'replace')}")
        return data if raw else (json.loads(data) if data else None)

    def json(self, method, path, key, obj):
        return self.call(method, path, key, json.dumps(obj, ensure_ascii=False).encode(), "application/json")


def multipart(fields, files):
    b = "----field" + uuid.uuid4().hex
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode())
    for k, (name, ctype, data) in files.items():
        out.write(f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: {ctype}\r\n\r\n".encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{b}--\r\n".encode())
    return out.getvalue(), "multipart/form-data; boundary=" + b


def read_pcm(path):
    with wave.open(path, "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return w.readframes(w.getnframes())


def wav_bytes(pcm):
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    return out.getvalue()


def sessions_in(folder):
    names = sorted(n[:-4] for n in os.listdir(folder) if n.endswith(".wav"))
    out = []
    for n in names:
        with open(os.path.join(folder, n + ".json"), encoding="utf-8") as f:
            out.append((n, json.load(f)))
    return out


def review(truth, detections):
    """The careful reviewer: returns (labels [(kind, session ms)], stats). detections: [(end_ms, score)]
    in session ms (relative to the session's audio start)."""
    labels, found, used = [], 0, set()
    for pe in truth["phrase_ends_ms"]:
        k = next((i for i, (d, _) in enumerate(detections) if i not in used and abs(d - pe) <= TOL_MS), None)
        if k is None:
            labels.append(("phrase_missed", pe))
        else:
            used.add(k)
            found += 1
    var_hits = 0
    for s, e in truth.get("variants", []):  # same meaning: closes the answer, not a false alarm
        k = next((i for i, (d, _) in enumerate(detections) if i not in used and s - TOL_MS <= d <= e + TOL_MS), None)
        if k is not None:
            used.add(k)
            var_hits += 1
    for i, (d, _) in enumerate(detections):
        if i not in used:
            labels.append(("not_phrase", d))
    return labels, {"phrases": len(truth["phrase_ends_ms"]), "found": found, "missed": len(truth["phrase_ends_ms"]) - found,
                    "variant_detections": var_hits, "false_alarms": len(detections) - len(used) ,
                    "detections": len(detections)}


# ---------------------------------------------------------------- through the service

def play(api, args, name, truth, state):
    sid = f"{args.run}-{name}"
    st = state.setdefault(sid, {})
    if "t0" not in st:
        st["t0"] = int(time.time() * 1000)
    t0 = st["t0"]
    dur = truth["duration_ms"]
    photo = open(args.photo, "rb").read()
    body, ctype = multipart({"id": sid, "exam_id": args.exam, "candidate_id": f"cand-{args.run}-{name}",
                             "scheduled_start": str(t0), "duration_sec": str(max(60, dur // 1000 + 60)),
                             "questions": str(len(truth["questions"]))},
                            {"photo": ("registration.jpg", "image/jpeg", photo)})
    api.call("POST", "/v1/sessions", args.ingest_key, body, ctype)
    events = [{"seq": 0, "type": "answering_started", "captured_at": t0}]
    for q in truth["questions"]:
        events.append({"seq": q["question"], "type": "question_shown", "captured_at": t0 + q["shown_ms"],
                       "data": {"question": q["question"]}})
    api.json("POST", f"/v1/sessions/{sid}/events", args.ingest_key, events)
    pcm = read_pcm(os.path.join(args.sessions, name + ".wav"))
    step = args.chunk_ms * 32  # bytes per chunk: 16 samples/ms × 2 bytes
    for seq, off in enumerate(range(0, len(pcm), step)):
        api.call("POST", f"/v1/sessions/{sid}/audio?seq={seq}&captured_at={t0 + off // 32}", args.ingest_key,
                 wav_bytes(pcm[off:off + step]), "audio/wav")
    api.json("POST", f"/v1/sessions/{sid}/events", args.ingest_key,
             [{"seq": 10000, "type": "exam_ended", "captured_at": t0 + dur}])
    return sid, t0


def wait_answers(api, args, sid):
    deadline, last = time.time() + args.wait_s, None
    while True:
        a = api.call("GET", f"/v1/sessions/{sid}/answers", args.review_key)
        done = a["answers"] and all(x["status"] in ("closed", "not_closed") for x in a["answers"])
        key = json.dumps(a["phrases"], sort_keys=True)
        if done and key == last:
            return a
        if time.time() > deadline:
            log(f"{sid}: analysis not finished after {args.wait_s}s; reviewing what is there")
            return a
        last = key if done else None
        time.sleep(2)


def online(args):
    api = API(args.url)
    state_path = os.path.join(args.sessions, f"loop-state-{args.run}.json")
    state = json.load(open(state_path)) if os.path.exists(state_path) else {}
    sess = sessions_in(args.sessions)[: args.limit or None]
    t_start = time.time()
    played = []
    for name, truth in sess:
        sid, t0 = play(api, args, name, truth, state)
        played.append((name, truth, sid, t0))
        with open(state_path, "w") as f:
            json.dump(state, f)
        log(f"posted {sid} ({truth['duration_ms'] / 1000:.0f} s, {len(truth['phrase_ends_ms'])} phrases)")
    log(f"posted {len(played)} sessions in {time.time() - t_start:.0f}s; waiting for the analysis")
    totals, per_session = {}, []
    for name, truth, sid, t0 in played:
        a = wait_answers(api, args, sid)
        dets = [(p["end_ms"] - t0, p["score"]) for p in a["phrases"]]
        labels, stats = review(truth, dets)
        st = state[sid]
        if not st.get("labelled"):
            for kind, at in labels:
                api.json("POST", f"/v1/sessions/{sid}/labels", args.review_key,
                         {"kind": kind, "at_ms": t0 + at, "note": "field_loop.py: reviewer with the truth"})
            st["labelled"] = True
            with open(state_path, "w") as f:
                json.dump(state, f)
        for k, v in stats.items():
            totals[k] = totals.get(k, 0) + v
        per_session.append({"session": sid, "voice": truth["voice"], **stats, "labels": labels})
        log(f"{sid}: {stats['found']}/{stats['phrases']} found, {stats['false_alarms']} false alarms, {len(labels)} labels")
    exp = api.json("POST", "/v1/exports", args.data_key, {"purpose": args.purpose, "kinds": ["audio"]})
    eid = exp.get("id") or exp.get("ID")
    z = api.call("GET", f"/v1/exports/{eid}/archive", args.data_key, raw=True)
    dest = unpack(z, args.export_out, eid)
    return totals, per_session, dest


def unpack(zbytes, out, eid):
    """Unzips an export archive into OUT/<id> (the archive may or may not have the id folder)."""
    os.makedirs(out, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(zbytes)) as zf:
        names = zf.namelist()
        top = {n.split("/")[0] for n in names}
        for n in names:
            if n.startswith("/") or ".." in n.split("/"):
                raise SystemExit(f"export archive has an unsafe path {n!r}")
        if top == {eid} or (len(top) == 1 and any(n.endswith("/export.json") and n.count("/") == 1 for n in names)):
            zf.extractall(out)
            dest = os.path.join(out, top.pop())
        else:
            dest = os.path.join(out, eid)
            zf.extractall(dest)
    if not os.path.exists(os.path.join(dest, "export.json")):
        raise SystemExit(f"{dest}: no export.json in the archive")
    return dest


# ---------------------------------------------------------------- without a service

def offline(args):
    """Same sessions and reviewer, spotted by `proctor analyze audio`; writes an export (format 1)."""
    sess = sessions_in(args.sessions)[: args.limit or None]
    eid = "exp_offline_" + hashlib.sha256((args.run + args.sessions).encode()).hexdigest()[:10]
    dest = os.path.join(args.export_out, eid)
    os.makedirs(os.path.join(dest, "audio"), exist_ok=True)
    items, totals, per_session = [], {}, []
    cmd = [args.proctor, "analyze", "audio"]
    if args.phrase_model:
        cmd += ["--phrase-model", args.phrase_model]
    for name, truth in sess:
        wav = os.path.join(args.sessions, name + ".wav")
        res = json.loads(subprocess.run(cmd + [wav], capture_output=True, check=True, text=True).stdout)
        dets = [(p["end_ms"], p["score"]) for p in res["phrases"]]
        labels, stats = review(truth, dets)
        for k, v in stats.items():
            totals[k] = totals.get(k, 0) + v
        per_session.append({"session": name, "voice": truth["voice"], **stats, "labels": labels})
        pcm = read_pcm(wav)
        events = [(at, kind != "not_phrase", kind, True) for kind, at in labels]
        for d, score in dets:
            if not any(abs(d - at) <= NEAR_MS for _, at in labels):
                events.append((d, True, "detection", False))
        for at, phrase, source, reviewed in sorted(events):
            lo, hi = at - 4000, at + 1000
            a, b = max(0, lo) * 32, min(len(pcm), hi * 32)
            snip = b"\0" * max(0, -lo * 32) + pcm[a:b]
            snip += b"\0" * (5000 * 32 - len(snip))
            iid = "a%06d" % (len(items) + 1)
            with open(os.path.join(dest, "audio", iid + ".wav"), "wb") as f:
                f.write(wav_bytes(snip))
            det = next(((dd, s) for dd, s in dets if abs(dd - at) <= NEAR_MS), None)
            it = {"id": iid, "kind": "audio", "session": "s_" + name, "candidate": "c_" + name, "exam": args.exam,
                  "audio": f"audio/{iid}.wav", "sample_rate": 16000, "start_ms": lo, "end_ms": hi, "phrase": phrase,
                  "source": source, "reviewed": reviewed,
                  "why": f"{'reviewer ' + source if reviewed else 'phrase detection'} at {at} ms (offline field loop)"}
            if phrase:
                it["phrase_end_ms"] = 4000
            if det:
                it["detection"] = {"score": det[1], "model": "phrase-model" if args.phrase_model else "phrase-gaiti@1"}
            items.append(it)
        log(f"{name}: {stats['found']}/{stats['phrases']} found, {stats['false_alarms']} false alarms, {len(labels)} labels")
    man = "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items).encode()
    with open(os.path.join(dest, "manifest.jsonl"), "wb") as f:
        f.write(man)
    by = {}
    for it in items:
        by[it["source"]] = by.get(it["source"], 0) + 1
    meta = {"format": "proctor-export", "format_version": 1, "id": eid, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "created_by": "field_loop.py --offline", "purpose": args.purpose, "filters": {"kinds": ["audio"]},
            "counts": {"items": len(items), "vision": 0, "audio": len(items), "by_label": by},
            "active_models": {"phrase-gaiti": "phrase-gaiti@1"}, "manifest_sha256": hashlib.sha256(man).hexdigest(),
            "pseudonyms": "session file names (offline: nothing to hide)"}
    with open(os.path.join(dest, "export.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=1)
    return totals, per_session, dest


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.abspath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", required=True, help="folder written by field_sessions.py")
    ap.add_argument("--export-out", required=True, help="the export is unzipped to EXPORT_OUT/<export id>")
    ap.add_argument("--url", default=os.environ.get("PROCTOR_URL", "http://localhost:8080"))
    ap.add_argument("--ingest-key", default=os.environ.get("PROCTOR_INGEST_KEY"))
    ap.add_argument("--review-key", default=os.environ.get("PROCTOR_REVIEW_KEY"))
    ap.add_argument("--data-key", default=os.environ.get("PROCTOR_DATA_KEY"))
    ap.add_argument("--run", default="field", help="session id prefix: the same run resumes, another posts new sessions")
    ap.add_argument("--exam", default="field-oral")
    ap.add_argument("--photo", default=os.path.join(root, ".cache", "demo", "sample1.jpg"))
    ap.add_argument("--chunk-ms", type=int, default=2000)
    ap.add_argument("--wait-s", type=int, default=600, help="longest wait for one session's analysis")
    ap.add_argument("--limit", type=int, default=0, help="only the first N sessions")
    ap.add_argument("--purpose", default="retrain phrase-gaiti on reviewed field sessions (field_loop)")
    ap.add_argument("--offline", action="store_true", help="no service: proctor analyze audio + an export written here")
    ap.add_argument("--proctor", default=os.path.join(root, "bin", "proctor"))
    ap.add_argument("--phrase-model", default="", help="--offline: spot with this version directory")
    args = ap.parse_args()
    t0 = time.time()
    if args.offline:
        totals, per_session, dest = offline(args)
    else:
        missing = [k for k in ("ingest_key", "review_key", "data_key") if not getattr(args, k)]
        if missing:
            ap.error("missing " + ", ".join("--" + k.replace("_", "-") for k in missing) + " (or PROCTOR_*_KEY)")
        totals, per_session, dest = online(args)
    summary = {"sessions": len(per_session), **totals, "export": dest, "seconds": round(time.time() - t0),
               "mode": "offline" if args.offline else args.url, "per_session": per_session}
    with open(dest.rstrip("/") + ".field-review.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, ensure_ascii=False, indent=1)
    log(f"reviewed {len(per_session)} sessions: {totals.get('found', 0)}/{totals.get('phrases', 0)} phrases found, "
        f"{totals.get('false_alarms', 0)} false alarms; export {dest} ({summary['seconds']}s)")
    print(dest)


if __name__ == "__main__":
    sys.exit(main())
