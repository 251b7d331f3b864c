package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// EmbeddedBrokerConfig configures the in-process broker. The zero value
// listens on a random loopback port and keeps everything in memory.
type EmbeddedBrokerConfig struct {
	// Port to listen on at 127.0.0.1. The broker only ever listens on
	// loopback: it has no authentication.
	//
	// Default: 0 (a random free port)
	Port int

	// DataDir, if set, makes the broker persist topics, offsets and groups
	// there and reload them on the next start, so unconsumed frames and
	// committed offsets survive a restart of the process. Without it
	// everything lives in memory and is lost when the process exits (and
	// a long exam day of frames grows the heap).
	//
	// Default: "" (in memory)
	DataDir string

	// Logger receives the broker's warnings and errors; its request-level
	// chatter goes to debug.
	//
	// Default: slog.Default()
	Logger *slog.Logger
}

// EmbeddedBroker is a single-node Kafka-protocol broker running inside this
// process (franz-go's kfake). The pipeline talks to it with the same kafka-go
// code it uses against a real cluster; it exists so that one command runs
// the whole service on a laptop.
type EmbeddedBroker struct {
	cluster *kfake.Cluster
	addr    string
}

// StartEmbeddedBroker starts the in-process broker and waits until it answers
// an ApiVersions request, so the returned Addr is ready for use. Close it when
// done; ctx only bounds the start-up.
func StartEmbeddedBroker(ctx context.Context, cfg EmbeddedBrokerConfig) (*EmbeddedBroker, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := []kfake.Opt{
		// One broker: with several, kfake spreads partition leadership and
		// group coordination over several ports on the same machine,
		// which buys nothing here.
		kfake.NumBrokers(1),
		kfake.Ports(cfg.Port),
		kfake.ClusterID("proctor-embedded"),
		kfake.WithLogger(kfakeLogger{log}),
		kfake.BrokerConfigs(map[string]string{
			// kfake applies retention.ms / retention.bytes of a topic on a
			// ticker whose default period is one hour; check every minute
			// so a configured retention actually bounds memory.
			"log.cleaner.backoff.ms": "60000",
		}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka broker on 127.0.0.1:%d: %w", cfg.Port, err)
	}
	addrs := cluster.ListenAddrs()
	if len(addrs) != 1 {
		cluster.Close()
		return nil, fmt.Errorf("start embedded kafka broker: listening on %d addresses, want 1", len(addrs))
	}
	b := &EmbeddedBroker{cluster: cluster, addr: addrs[0]}
	if err := b.waitReady(ctx); err != nil {
		cluster.Close()
		return nil, err
	}
	log.Info("embedded kafka broker started", "addr", b.addr, "data_dir", cfg.DataDir)
	return b, nil
}

// waitReady does one ApiVersions round trip through kafka-go, proving that the
// listener accepts connections and speaks the protocol kafka-go expects.
func (b *EmbeddedBroker) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tr := &kafka.Transport{ClientID: "proctor-embedded-probe"}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(b.addr), Transport: tr}
	for {
		_, err := client.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embedded kafka broker at %s not answering: %w", b.addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Addr returns the broker's host:port, to be used as Config.Brokers.
func (b *EmbeddedBroker) Addr() string { return b.addr }

// Port returns the port the broker listens on.
func (b *EmbeddedBroker) Port() int {
	_, p, _ := net.SplitHostPort(b.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Close stops the broker; connected clients see their connections drop.
// With a DataDir the state is flushed to disk first.
func (b *EmbeddedBroker) Close() {
	b.cluster.Close()
}

// kfakeLogger forwards kfake's logs to slog. kfake logs every request at its
// info level, which is debug for us.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var lvl slog.Level
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	default:
		lvl = slog.LevelDebug
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, lvl) {
		return
	}
	l.log.Log(ctx, lvl, "kfake: "+fmt.Sprintf(format, args...), "component", "embedded-broker")
}
