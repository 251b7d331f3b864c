package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"proctor/analyzers"
	"proctor/app"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
)

// serviceFlags are the settings shared by serve, api, worker, demo and bench. Each flag's default
// comes from its environment variable, so containers need no command line.
type serviceFlags struct {
	addr, dataDir, dsn, brokers, group, topicPrefix, logLevel               string
	partitions, concurrency, frameReaders, frameSets                        int
	faceAbsent, multipleFaces                                               time.Duration
	analyzers, identityModel, personsModel, evidencePersonsModel, firstLook string
	longSilence                                                             time.Duration
	recordingsDir                                                           string
	recordingFPS                                                            float64
	scanFPS                                                                 float64
	maxRecordingBytes                                                       int64
	modelPoll, audioRetention                                               time.Duration
	discardAudio                                                            bool
	maxLag                                                                  time.Duration
	maxLagMessages                                                          int64
	keyFile                                                                 string
	kafkaRetention                                                          time.Duration
}

// serviceAnalyzers is the default of --analyzers for serve, worker, demo and bench: the face
// count, identity and head-pose checks, mask/occlusion, ears and earphones, the person/phone detector, and the
// evidence camera's A4-sheet and camera-motion (room scan) checks.
var serviceAnalyzers = []string{"faces", "landmarks", "identity", "headpose", "attire", "ears", "persons", "sheet", "cameramotion"}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func (f *serviceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", env("PROCTOR_ADDR", ":8080"), "HTTP listen address (PROCTOR_ADDR)")
	fs.StringVar(&f.dataDir, "data-dir", env("PROCTOR_DATA_DIR", "data"), "directory of the SQLite database when no DSN is given (PROCTOR_DATA_DIR)")
	fs.StringVar(&f.dsn, "database-dsn", env("PROCTOR_DATABASE_DSN", ""), "PostgreSQL DSN, e.g. 'host=db user=proctor dbname=proctor sslmode=disable'; empty = SQLite (PROCTOR_DATABASE_DSN)")
	fs.StringVar(&f.brokers, "kafka-brokers", env("PROCTOR_KAFKA_BROKERS", ""), "comma-separated Kafka bootstrap brokers; empty = start an embedded broker in this process (PROCTOR_KAFKA_BROKERS)")
	fs.IntVar(&f.partitions, "kafka-partitions", envInt("PROCTOR_KAFKA_PARTITIONS", 6), "partitions of topics this process creates: the most worker goroutines a topic can use (PROCTOR_KAFKA_PARTITIONS)")
	fs.StringVar(&f.group, "kafka-group", env("PROCTOR_KAFKA_GROUP", "proctor"), "consumer group prefix; one group per topic (PROCTOR_KAFKA_GROUP)")
	fs.StringVar(&f.topicPrefix, "kafka-topic-prefix", env("PROCTOR_KAFKA_TOPIC_PREFIX", "proctor"), "topics are PREFIX.frames, PREFIX.audio, PREFIX.events and PREFIX.deadletter (PROCTOR_KAFKA_TOPIC_PREFIX)")
	fs.IntVar(&f.concurrency, "concurrency", envInt("PROCTOR_WORKER_CONCURRENCY", 2), "consumers per topic and audio analyzer sets per worker process: one per core (frame analyzer sets: --frame-sets) (PROCTOR_WORKER_CONCURRENCY)")
	fs.IntVar(&f.frameSets, "frame-sets", envInt("PROCTOR_FRAME_SETS", 0), "analyzer sets (frames analysed at once) the frame readers share, each with its own models (~350 MB); 0 = --concurrency + 1, which keeps the cores busy while a batch is stored (PROCTOR_FRAME_SETS)")
	fs.IntVar(&f.frameReaders, "frame-readers", envInt("PROCTOR_FRAME_READERS", 0), "Kafka readers of the frames topic per worker process, sharing the analyzer sets; 0 = the topic's partitions (--kafka-partitions) (PROCTOR_FRAME_READERS)")
	fs.DurationVar(&f.faceAbsent, "face-absent-after", envDuration("PROCTOR_FACE_ABSENT_AFTER", 5*time.Second), "no face this long raises FACE_ABSENT (PROCTOR_FACE_ABSENT_AFTER)")
	fs.DurationVar(&f.multipleFaces, "multiple-faces-after", envDuration("PROCTOR_MULTIPLE_FACES_AFTER", 2*time.Second), "two or more faces this long raise MULTIPLE_FACES (PROCTOR_MULTIPLE_FACES_AFTER)")
	fs.DurationVar(&f.longSilence, "long-silence", envDuration("PROCTOR_LONG_SILENCE", 60*time.Second), "no speech this long inside an answer raises LONG_SILENCE (PROCTOR_LONG_SILENCE)")
	fs.StringVar(&f.analyzers, "analyzers", env("PROCTOR_ANALYZERS", strings.Join(serviceAnalyzers, ",")), "frame analyzers to run, in order (PROCTOR_ANALYZERS)")
	fs.StringVar(&f.identityModel, "identity-model", env("PROCTOR_IDENTITY_MODEL", ""), "face-embedding model of the identity check (models/manifests); empty = "+analyzers.DefaultIdentityModel+" with the first look "+analyzers.DefaultIdentityFirstLook+"; facenet-keras is one pass (half the CPU on unclear faces, more false mismatches over time; docs/vision.md) (PROCTOR_IDENTITY_MODEL)")
	fs.StringVar(&f.firstLook, "identity-first-look", env("PROCTOR_IDENTITY_FIRST_LOOK", ""), "a cheaper face-embedding model with the identity model's crop that settles clear matches first, the identity model measuring the rest; empty = "+analyzers.DefaultIdentityFirstLook+" for the default identity model, none for others; none = off (PROCTOR_IDENTITY_FIRST_LOOK)")
	fs.StringVar(&f.personsModel, "persons-model", env("PROCTOR_PERSONS_MODEL", ""), "person/phone detector of the main camera (models/manifests); empty = "+analyzers.DefaultPersonsModel+" (~60% of the float model's CPU, the same people and phones on main-camera scenes; docs/vision.md) (PROCTOR_PERSONS_MODEL)")
	fs.StringVar(&f.evidencePersonsModel, "evidence-persons-model", env("PROCTOR_EVIDENCE_PERSONS_MODEL", ""), "person/phone detector of the evidence camera; empty = "+analyzers.DefaultEvidencePersonsModel+" (nanodet-coco-int8 finds a few fewer small people there: 67 vs 72 of 96 on a laptop screen) (PROCTOR_EVIDENCE_PERSONS_MODEL)")
	fs.StringVar(&f.logLevel, "log-level", env("PROCTOR_LOG_LEVEL", "info"), "debug, info, warn or error (PROCTOR_LOG_LEVEL)")
	fs.StringVar(&f.recordingsDir, "recordings-dir", env("PROCTOR_RECORDINGS_DIR", ""), "uploaded recordings; API and workers on different machines must share it; empty = DATA_DIR/recordings (PROCTOR_RECORDINGS_DIR)")
	fs.Float64Var(&f.recordingFPS, "recording-fps", envFloat("PROCTOR_RECORDING_FPS", 1), "frames per second analysed from uploaded recordings (PROCTOR_RECORDING_FPS)")
	fs.Float64Var(&f.scanFPS, "recording-scan-fps", envFloat("PROCTOR_RECORDING_SCAN_FPS", 5), "frames per second analysed in the first 5 min of an uploaded evidence recording, where the room scan is measured (PROCTOR_RECORDING_SCAN_FPS)")
	fs.DurationVar(&f.modelPoll, "model-poll", envDuration("PROCTOR_MODEL_POLL", 10*time.Second), "how often workers check the model versions for a promoted or shadow version (PROCTOR_MODEL_POLL)")
	fs.DurationVar(&f.audioRetention, "audio-retention", envDuration("PROCTOR_AUDIO_RETENTION", 30*24*time.Hour), "service default of the audio retention class: stored audio is kept this long (organisations and exams may override it: PUT /v1/retention) (PROCTOR_AUDIO_RETENTION)")
	fs.BoolVar(&f.discardAudio, "discard-audio", env("PROCTOR_DISCARD_AUDIO", "") == "true", "do not keep analysed audio (no audio snippets in exports) (PROCTOR_DISCARD_AUDIO)")
	fs.DurationVar(&f.maxLag, "max-lag", envDuration("PROCTOR_MAX_LAG", 30*time.Second), "backpressure: while the oldest frame (audio chunk) not yet analysed was accepted longer ago than this, frame (audio) posts answer 429 with Retry-After; 0 = no bound (PROCTOR_MAX_LAG)")
	fs.Int64Var(&f.maxLagMessages, "max-lag-messages", int64(envInt("PROCTOR_MAX_LAG_MESSAGES", 0)), "backpressure: the same bound in messages waiting per topic; 0 = no bound (PROCTOR_MAX_LAG_MESSAGES)")
	fs.StringVar(&f.keyFile, "encryption-key-file", env("PROCTOR_ENCRYPTION_KEY_FILE", ""), "key file sealing registration photos and face embeddings (AES-256-GCM; 'ID BASE64' lines, first = current); required with PostgreSQL; empty with SQLite = DATA_DIR/encryption.key, created on first use (PROCTOR_ENCRYPTION_KEY_FILE)")
	fs.DurationVar(&f.kafkaRetention, "kafka-retention", envDuration("PROCTOR_KAFKA_RETENTION", 7*24*time.Hour), "retention.ms of the topics this process creates: how long frames and audio stay in Kafka (PROCTOR_KAFKA_RETENTION)")
	fs.Int64Var(&f.maxRecordingBytes, "max-recording-bytes", int64(envInt("PROCTOR_MAX_RECORDING_BYTES", 2<<30)), "largest recording upload accepted (PROCTOR_MAX_RECORDING_BYTES)")
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return v
	}
	return def
}

func (f *serviceFlags) config() app.Config {
	var cfg app.Config
	cfg.Addr = f.addr
	cfg.Store = f.storeConfig()
	cfg.Kafka.Retention = f.kafkaRetention
	for _, b := range strings.Split(f.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Kafka.Brokers = append(cfg.Kafka.Brokers, b)
		}
	}
	cfg.Kafka.Partitions = f.partitions
	cfg.Kafka.GroupID = f.group
	cfg.Kafka.Topics = pipeline.Topics{Frames: f.topicPrefix + ".frames", Audio: f.topicPrefix + ".audio",
		Events: f.topicPrefix + ".events", DeadLetter: f.topicPrefix + ".deadletter"}
	cfg.Kafka.Concurrency, cfg.Kafka.FrameReaders, cfg.Kafka.FrameSets = f.concurrency, f.frameReaders, f.frameSets
	// The service's own values of declared settings; each exam may override them.
	cfg.Rules.Settings = rules.Params{rules.SettingFaceAbsentAfter: f.faceAbsent.Seconds(),
		rules.SettingMultipleFacesAfter: f.multipleFaces.Seconds(), rules.SettingLongSilence: f.longSilence.Seconds()}
	for _, n := range strings.Split(f.analyzers, ",") {
		if n = strings.TrimSpace(n); n != "" {
			cfg.Analyzers.Analyzers = append(cfg.Analyzers.Analyzers, n)
		}
	}
	cfg.Analyzers.Identity.Model, cfg.Analyzers.Persons.Model, cfg.Analyzers.Persons.EvidenceModel = f.identityModel, f.personsModel, f.evidencePersonsModel
	cfg.Analyzers.Identity.FirstLook = f.firstLook
	cfg.Audio.Answers.LongSilence = f.longSilence
	cfg.Recordings.Dir, cfg.API.Recordings.Dir = f.recordingsDir, f.recordingsDir
	cfg.Recordings.FrameRate = f.recordingFPS
	cfg.Recordings.ScanRate = f.scanFPS
	cfg.API.Recordings.MaxBytes = f.maxRecordingBytes
	cfg.API.MaxLag, cfg.API.MaxLagMessages = f.maxLag, f.maxLagMessages
	cfg.ModelPoll, cfg.AudioRetention, cfg.Audio.DiscardAudio = f.modelPoll, f.audioRetention, f.discardAudio
	cfg.Log = newLogger(f.logLevel)
	return cfg
}

// storeConfig is the database and its encryption key file.
func (f *serviceFlags) storeConfig() store.Config {
	return store.Config{DSN: f.dsn, DataDir: f.dataDir, KeyFile: f.keyFile}
}

// parse parses a command's flags. -h or --help prints the usage to stdout and returns
// flag.ErrHelp (exit 0); a mistake prints the error and the usage to stderr and returns a
// usageError (exit 2).
func parse(fs *flag.FlagSet, args []string) error {
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.Usage = func() {
		fmt.Fprintf(&out, "usage: proctor %s [flags]\n\n", fs.Name())
		fs.PrintDefaults()
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Stdout.Write(out.Bytes())
		return err
	case err != nil:
		os.Stderr.Write(out.Bytes())
		return usageError{err}
	}
	return nil
}

// service is the command that runs the API and/or the workers (serve, api, worker).
func service(runAPI, runWorkers bool) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error { return runService(ctx, args, runAPI, runWorkers) }
}

// runService runs the API and/or the workers until SIGINT/SIGTERM.
func runService(ctx context.Context, args []string, runAPI, runWorkers bool) error {
	name := map[[2]bool]string{{true, true}: "serve", {true, false}: "api", {false, true}: "worker"}[[2]bool{runAPI, runWorkers}]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var sf serviceFlags
	sf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := sf.config()
	if !runWorkers && len(cfg.Kafka.Brokers) == 0 {
		return usageError{fmt.Errorf("the api role needs --kafka-brokers (an embedded broker is private to one process: use 'serve')")}
	}
	if !runAPI && len(cfg.Kafka.Brokers) == 0 {
		return usageError{fmt.Errorf("the worker role needs --kafka-brokers (an embedded broker is private to one process: use 'serve')")}
	}
	cfg.RunAPI, cfg.RunWorkers = runAPI, runWorkers
	a, err := app.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	cfg.Log.Info("proctor running", "role", name, "api", a.URL, "brokers", a.Kafka.Brokers)
	<-ctx.Done()
	cfg.Log.Info("shutting down")
	return a.Err()
}

// openWithServiceFlags registers the service flags on fs, parses args and opens the store
// they name: the preamble of the commands that work on the database alone.
func openWithServiceFlags(ctx context.Context, fs *flag.FlagSet, sf *serviceFlags, args []string) (*store.Store, error) {
	sf.register(fs)
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	return store.Open(ctx, sf.storeConfig())
}

func runMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	var sf serviceFlags
	st, err := openWithServiceFlags(ctx, fs, &sf, args)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Printf("schema at version %d\n", store.SchemaVersion)
	return nil
}

// runKeysCreate: proctor keys create --org ORG --name NAME --scopes ingest,review,data,admin
func runKeysCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	var sf serviceFlags
	sf.register(fs)
	org := fs.String("org", "default", "organisation the key belongs to (created if missing)")
	name := fs.String("name", "", "what the key is for, e.g. 'exam platform' or 'reviewer alice'")
	scopes := fs.String("scopes", "", "comma-separated scopes: ingest, review, data, admin")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *name == "" || *scopes == "" {
		return usageError{fmt.Errorf("--name and --scopes are required")}
	}
	st, err := store.Open(ctx, sf.storeConfig())
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.EnsureOrganisation(ctx, *org, *org); err != nil {
		return err
	}
	token, k, err := st.CreateAPIKey(ctx, *org, *name, strings.Split(*scopes, ","))
	if err != nil {
		return usageError{err}
	}
	if err := store.Audit(st.DB.WithContext(ctx), store.AuditEntry{OrgID: *org, Actor: "cli", Action: "key.create",
		Target: "key:" + k.ID, Detail: k.Name + " [" + k.Scopes + "]"}); err != nil {
		return err
	}
	fmt.Println(token)
	return nil
}
