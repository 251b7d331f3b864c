package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"proctor/privacy"
	"proctor/store"
)

// runDelete: proctor delete --org ORG (--session ID | --candidate ID) --reason WHY
func runDelete(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	var sf serviceFlags
	sf.register(fs)
	org := fs.String("org", "default", "organisation of the session or candidate")
	session := fs.String("session", "", "session id to erase (the platform's id)")
	candidate := fs.String("candidate", "", "candidate id: erase every session of the candidate in the organisation")
	reason := fs.String("reason", "", "why the data is erased (required; recorded in the audit log)")
	actor := fs.String("actor", "cli", "who asks (recorded in the audit log)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (*session == "") == (*candidate == "") {
		return usageError{errors.New("give exactly one of --session ID or --candidate ID")}
	}
	if *reason == "" {
		return usageError{privacy.ErrReason}
	}
	st, err := store.Open(ctx, sf.storeConfig())
	if err != nil {
		return err
	}
	defer st.Close()
	d := &privacy.Deleter{Store: st, RecordingsDir: recordingsDir(sf)}
	rep, err := d.Delete(ctx, privacy.Request{OrgID: *org, SessionID: *session, CandidateID: *candidate, Actor: *actor, Reason: *reason})
	if errors.Is(err, store.ErrNotFound) {
		return usageError{fmt.Errorf("%w in organisation %s", err, *org)}
	}
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	return nil
}

// runRetentionSweep: proctor retention sweep — one pass of the sweeper the workers run hourly.
func runRetentionSweep(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("retention sweep", flag.ContinueOnError)
	var sf serviceFlags
	st, err := openWithServiceFlags(ctx, fs, &sf, args)
	if err != nil {
		return err
	}
	defer st.Close()
	defaults := privacy.Policy{}
	if days := int(sf.audioRetention.Hours() / 24); days > 0 {
		defaults[privacy.Audio] = days
	}
	sw := &privacy.Sweeper{Store: st, RecordingsDir: recordingsDir(sf), Defaults: defaults, Log: newLogger(sf.logLevel)}
	got, err := sw.Sweep(ctx)
	out, _ := json.Marshal(got)
	fmt.Println(string(out))
	return err
}

// runEncryptionKey: proctor keys encryption-key --out FILE [--id ID] — a new key file, or a new
// first line (the key for new data) on top of an existing one: rotation (docs/privacy.md).
func runEncryptionKey(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("keys encryption-key", flag.ContinueOnError)
	out := fs.String("out", "", "key file to create, or to rotate (the new key goes first, the old ones stay for reading)")
	id := fs.String("id", "", "key id (default key-YYYYMMDDTHHMMSS)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError{errors.New("--out FILE is required")}
	}
	if *id == "" {
		*id = "key-" + time.Now().UTC().Format("20060102T150405")
	}
	old, err := os.ReadFile(*out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	data := append([]byte(store.NewKeyLine(*id)), old...)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if _, err := store.LoadKeyFile(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	fmt.Printf("%s: key %s now seals new data\n", *out, *id)
	return nil
}

// runReseal: proctor keys reseal — re-encrypts every sealed value under the current key (after
// a rotation, so the old key can be removed from the file) and seals any plaintext left from
// before encryption.
func runReseal(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("keys reseal", flag.ContinueOnError)
	var sf serviceFlags
	st, err := openWithServiceFlags(ctx, fs, &sf, args)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.Reseal(ctx, true)
	fmt.Printf("resealed %d values\n", n)
	return err
}

func recordingsDir(sf serviceFlags) string {
	if sf.recordingsDir != "" {
		return sf.recordingsDir
	}
	return filepath.Join(sf.dataDir, "recordings")
}
