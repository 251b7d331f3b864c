package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// errNoBrokers is returned when a Config reaches Kafka code without brokers:
// the embedded broker must be started first and its address put in Brokers.
var errNoBrokers = errors.New("no Kafka brokers configured: set Config.Brokers or start the embedded broker (StartEmbeddedBroker) and use its Addr")

// adminClient returns a kafka-go Client over its own Transport; call the
// returned func to close the Transport's connections.
func adminClient(cfg Config) (*kafka.Client, func(), error) {
	if len(cfg.Brokers) == 0 {
		return nil, nil, errNoBrokers
	}
	tr := &kafka.Transport{ClientID: cfg.ClientID + "-admin"}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr, Timeout: 30 * time.Second}
	return client, tr.CloseIdleConnections, nil
}

// EnsureTopics creates the four pipeline topics with cfg.Partitions and
// cfg.ReplicationFactor. Topics that already exist are left as they are (a
// different partition count is logged, not changed: adding partitions would
// move sessions to other partitions and break per-session ordering of
// messages already queued). It returns once every partition of every topic
// has a leader, so a producer started right after does not race topic
// creation.
func EnsureTopics(ctx context.Context, cfg Config) error {
	cfg = cfg.WithDefaults()
	client, closeClient, err := adminClient(cfg)
	if err != nil {
		return err
	}
	defer closeClient()

	topics := cfg.Topics.All()
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		tc := kafka.TopicConfig{
			Topic:             t,
			NumPartitions:     cfg.Partitions,
			ReplicationFactor: cfg.ReplicationFactor,
		}
		if cfg.Retention > 0 {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{
				ConfigName:  "retention.ms",
				ConfigValue: strconv.FormatInt(cfg.Retention.Milliseconds(), 10),
			})
		}
		req.Topics = append(req.Topics, tc)
	}
	// The transport routes CreateTopics to the controller itself.
	res, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics %v at %v: %w", topics, cfg.Brokers, err)
	}
	var created []string
	for _, t := range topics {
		switch terr := res.Errors[t]; {
		case terr == nil:
			created = append(created, t)
		case errors.Is(terr, kafka.TopicAlreadyExists):
		default:
			return fmt.Errorf("create topic %q: %w", t, terr)
		}
	}

	parts, err := waitForLeaders(ctx, cfg, topics)
	if err != nil {
		return err
	}
	if err := waitForServing(ctx, client, parts); err != nil {
		return err
	}
	for _, t := range topics {
		if n := parts[t]; n != cfg.Partitions {
			cfg.Logger.Warn("existing topic has a different partition count than configured; leaving it",
				"topic", t, "partitions", n, "configured", cfg.Partitions)
		}
	}
	if len(created) > 0 {
		cfg.Logger.Info("kafka topics created", "topics", created,
			"partitions", cfg.Partitions, "replication_factor", cfg.ReplicationFactor)
	}
	return nil
}

// waitForLeaders polls metadata straight from a broker (the kafka-go
// Transport would answer from its cache) until every partition of topics has
// a leader. On Kafka a freshly created topic is briefly leaderless; producing
// to it then fails with LEADER_NOT_AVAILABLE. It returns the partition count
// per topic.
func waitForLeaders(ctx context.Context, cfg Config, topics []string) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var lastErr error
	for {
		parts, err := readPartitions(ctx, cfg, topics)
		if err == nil {
			return parts, nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for topic leaders: %w (last: %v)", ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitForServing waits until the leader of every partition answers
// ListOffsets. On KRaft Kafka the metadata names a leader a moment before that
// broker serves the partition: a produce in that window fails with
// NOT_LEADER_OR_FOLLOWER and kafka-go retries after 100ms+, which the first
// ingest requests would feel.
func waitForServing(ctx context.Context, client *kafka.Client, parts map[string]int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for t, n := range parts {
		for p := range n {
			req.Topics[t] = append(req.Topics[t], kafka.FirstOffsetOf(p))
		}
	}
	for {
		res, err := client.ListOffsets(ctx, req)
		if err == nil {
			for t, ps := range res.Topics {
				for _, p := range ps {
					if p.Error != nil && err == nil {
						err = fmt.Errorf("topic %s partition %d: %w", t, p.Partition, p.Error)
					}
				}
			}
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for topic partitions to be served: %w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func readPartitions(ctx context.Context, cfg Config, topics []string) (map[string]int, error) {
	d := &kafka.Dialer{ClientID: cfg.ClientID + "-admin", Timeout: 5 * time.Second}
	var conn *kafka.Conn
	var err error
	for _, b := range cfg.Brokers {
		if conn, err = d.DialContext(ctx, "tcp", b); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dial %v: %w", cfg.Brokers, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	ps, err := conn.ReadPartitions(topics...)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int, len(topics))
	for _, p := range ps {
		if p.Leader.Host == "" || p.Error != nil {
			return nil, fmt.Errorf("topic %s partition %d has no leader yet (%v)", p.Topic, p.ID, p.Error)
		}
		counts[p.Topic]++
	}
	for _, t := range topics {
		if counts[t] == 0 {
			return nil, fmt.Errorf("topic %s not in metadata yet", t)
		}
	}
	return counts, nil
}

// BrokerVersion describes the cluster for the start-up log: cluster id,
// broker count and the highest versions of the APIs the pipeline leans on.
// Kafka does not report its release over the protocol; the API versions are
// what decides kafka-go's behaviour anyway.
func BrokerVersion(ctx context.Context, cfg Config) (string, error) {
	cfg = cfg.WithDefaults()
	client, closeClient, err := adminClient(cfg)
	if err != nil {
		return "", err
	}
	defer closeClient()
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return "", fmt.Errorf("metadata from %v: %w", cfg.Brokers, err)
	}
	av, err := client.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
	if err != nil {
		return "", fmt.Errorf("api versions from %v: %w", cfg.Brokers, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cluster=%s brokers=%d controller=%d apis=%d",
		meta.ClusterID, len(meta.Brokers), meta.Controller.ID, len(av.ApiKeys))
	for _, k := range av.ApiKeys {
		switch k.ApiName {
		case "Produce", "Fetch", "JoinGroup", "OffsetCommit":
			fmt.Fprintf(&b, " %s=v%d-v%d", k.ApiName, k.MinVersion, k.MaxVersion)
		}
	}
	return b.String(), nil
}
