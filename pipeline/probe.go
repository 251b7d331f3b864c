package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// KafkaProbe checks that the Kafka brokers answer, for /healthz, /readyz and the admin status.
// Every check dials afresh on its own transport: a probe must see the brokers as they are now,
// not a pooled connection or the producer's cached metadata.
type KafkaProbe struct {
	// Config names the brokers, the topics and the consumer groups (for lag).
	Config Config

	// Timeout bounds one check. A stopped broker refuses at once; a paused or unreachable one
	// takes the whole timeout.
	//
	// Default: 2s
	Timeout time.Duration
}

// KafkaStatus is what one check saw.
type KafkaStatus struct {
	// Brokers as the cluster advertises them (host:port).
	Brokers []string `json:"brokers"`
	// Lag per topic: messages its consumer group has not committed yet (only when asked for).
	Lag map[string]int64 `json:"lag,omitempty"`
	// Backlog per topic: the messages not yet processed and how long the oldest of them has
	// waited (only when lag is asked for).
	Backlog map[string]TopicBacklog `json:"backlog,omitempty"`
	// LagError says why the lag could not be read; the brokers answered all the same.
	LagError string `json:"lag_error,omitempty"`
}

// TopicBacklog is what a topic's consumer group has not processed yet.
type TopicBacklog struct {
	// Messages past the group's committed offsets (the lag).
	Messages int64 `json:"messages"`
	// OldestAge is how long ago the oldest unprocessed message was produced (its Kafka
	// timestamp, which the producer sets when the API accepted it): the analysis delay that
	// backpressure bounds. Zero when nothing is waiting.
	OldestAge time.Duration `json:"-"`
	// OldestSeconds is OldestAge in seconds, for JSON.
	OldestSeconds float64 `json:"oldest_unprocessed_seconds"`
	// Position is the sum over partitions of the group's position (committed offset, or the
	// first offset when nothing is committed): its growth between two readings is how many
	// messages the workers processed.
	Position int64 `json:"-"`
}

// Check asks the cluster for its metadata and, with lag, for the consumer groups' committed
// offsets against the topics' ends. The error says only whether the brokers answered: a lag
// that cannot be read goes to KafkaStatus.LagError.
func (p *KafkaProbe) Check(ctx context.Context, lag bool) (KafkaStatus, error) {
	cfg := p.Config.WithDefaults()
	if len(cfg.Brokers) == 0 {
		return KafkaStatus{}, errNoBrokers
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := &kafka.Transport{ClientID: cfg.ClientID + "-probe", DialTimeout: timeout}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr, Timeout: timeout}

	consumed := []string{cfg.Topics.Frames, cfg.Topics.Audio, cfg.Topics.Events}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: consumed})
	if err != nil {
		return KafkaStatus{}, fmt.Errorf("kafka metadata from %v: %w", cfg.Brokers, err)
	}
	if len(md.Brokers) == 0 {
		return KafkaStatus{}, fmt.Errorf("kafka metadata from %v: no brokers", cfg.Brokers)
	}
	var st KafkaStatus
	for _, b := range md.Brokers {
		st.Brokers = append(st.Brokers, net.JoinHostPort(b.Host, strconv.Itoa(b.Port)))
	}
	sort.Strings(st.Brokers)
	if lag {
		if st.Lag, st.Backlog, err = groupBacklog(ctx, client, cfg, md); err != nil {
			st.LagError = err.Error()
		}
	}
	return st, nil
}

// groupBacklog sums, per consumed topic, the messages past its consumer group's committed
// offsets, and reads the timestamp of the first of them on every partition that lags: the oldest
// unprocessed message. That is one small fetch per lagging partition (Kafka returns at least the
// first record batch whatever MaxBytes says), cheap enough to run every second.
func groupBacklog(ctx context.Context, client *kafka.Client, cfg Config, md *kafka.MetadataResponse) (map[string]int64, map[string]TopicBacklog, error) {
	lag, backlog := map[string]int64{}, map[string]TopicBacklog{}
	ends := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	parts := map[string][]int{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, nil, fmt.Errorf("kafka topic %s: %w", t.Name, t.Error)
		}
		for _, pt := range t.Partitions {
			ends.Topics[t.Name] = append(ends.Topics[t.Name], kafka.FirstOffsetOf(pt.ID), kafka.LastOffsetOf(pt.ID))
			parts[t.Name] = append(parts[t.Name], pt.ID)
		}
	}
	offs, err := client.ListOffsets(ctx, ends)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka list offsets: %w", err)
	}
	now := time.Now()
	for topic, ps := range parts {
		committed, err := offsetFetch(ctx, client, cfg.GroupFor(topic), topic, ps)
		if errors.Is(err, kafka.GroupIdNotFound) { // no worker has joined yet: nothing committed
			committed, err = &kafka.OffsetFetchResponse{}, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("kafka offsets of group %s: %w", cfg.GroupFor(topic), err)
		}
		at := map[int]int64{}
		for _, c := range committed.Topics[topic] {
			if c.Error != nil {
				return nil, nil, fmt.Errorf("kafka offsets of group %s: %w", cfg.GroupFor(topic), c.Error)
			}
			at[c.Partition] = c.CommittedOffset
		}
		var b TopicBacklog
		for _, o := range offs.Topics[topic] {
			if o.Error != nil {
				return nil, nil, fmt.Errorf("kafka offsets of %s: %w", topic, o.Error)
			}
			from, ok := at[o.Partition]
			if !ok || from < o.FirstOffset { // nothing committed yet (or deleted by retention)
				from = o.FirstOffset
			}
			b.Position += from
			if o.LastOffset <= from {
				continue
			}
			b.Messages += o.LastOffset - from
			t, err := messageTime(ctx, client, topic, o.Partition, from)
			if err != nil {
				return nil, nil, fmt.Errorf("kafka oldest unprocessed message of %s/%d: %w", topic, o.Partition, err)
			}
			if age := now.Sub(t); !t.IsZero() && age > b.OldestAge {
				b.OldestAge = age
			}
		}
		b.OldestSeconds = b.OldestAge.Seconds()
		lag[topic], backlog[topic] = b.Messages, b
	}
	return lag, backlog, nil
}

// messageTime is the timestamp of the message at offset, zero when it has none.
func messageTime(ctx context.Context, client *kafka.Client, topic string, partition int, offset int64) (time.Time, error) {
	res, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: partition, Offset: offset,
		MinBytes: 1, MaxBytes: 1, MaxWait: 100 * time.Millisecond})
	if err != nil {
		return time.Time{}, err
	}
	if res.Error != nil {
		return time.Time{}, res.Error
	}
	for {
		r, err := res.Records.ReadRecord()
		if err != nil { // io.EOF: nothing at offset yet (just produced, not yet visible)
			return time.Time{}, nil
		}
		if r.Offset >= offset {
			if r.Time.Year() < 2000 { // no timestamp (-1 on the wire)
				return time.Time{}, nil
			}
			return r.Time, nil
		}
	}
}

// offsetFetch reads a group's committed offsets, retrying while the group's coordinator moves or
// loads (right after the cluster created __consumer_offsets, say) until ctx ends.
func offsetFetch(ctx context.Context, client *kafka.Client, group, topic string, parts []int) (*kafka.OffsetFetchResponse, error) {
	for {
		res, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
		if err == nil {
			err = res.Error
		}
		if !errors.Is(err, kafka.NotCoordinatorForGroup) && !errors.Is(err, kafka.GroupCoordinatorNotAvailable) &&
			!errors.Is(err, kafka.GroupLoadInProgress) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
