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
	// LagError says why the lag could not be read; the brokers answered all the same.
	LagError string `json:"lag_error,omitempty"`
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
		if st.Lag, err = groupLag(ctx, client, cfg, md); err != nil {
			st.LagError = err.Error()
		}
	}
	return st, nil
}

// groupLag sums, per consumed topic, the messages past its consumer group's committed offsets.
func groupLag(ctx context.Context, client *kafka.Client, cfg Config, md *kafka.MetadataResponse) (map[string]int64, error) {
	lag := map[string]int64{}
	ends := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	parts := map[string][]int{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("kafka topic %s: %w", t.Name, t.Error)
		}
		for _, pt := range t.Partitions {
			ends.Topics[t.Name] = append(ends.Topics[t.Name], kafka.FirstOffsetOf(pt.ID), kafka.LastOffsetOf(pt.ID))
			parts[t.Name] = append(parts[t.Name], pt.ID)
		}
	}
	offs, err := client.ListOffsets(ctx, ends)
	if err != nil {
		return nil, fmt.Errorf("kafka list offsets: %w", err)
	}
	for topic, ps := range parts {
		committed, err := offsetFetch(ctx, client, cfg.GroupFor(topic), topic, ps)
		if errors.Is(err, kafka.GroupIdNotFound) { // no worker has joined yet: nothing committed
			committed, err = &kafka.OffsetFetchResponse{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("kafka offsets of group %s: %w", cfg.GroupFor(topic), err)
		}
		at := map[int]int64{}
		for _, c := range committed.Topics[topic] {
			if c.Error != nil {
				return nil, fmt.Errorf("kafka offsets of group %s: %w", cfg.GroupFor(topic), c.Error)
			}
			at[c.Partition] = c.CommittedOffset
		}
		var total int64
		for _, o := range offs.Topics[topic] {
			if o.Error != nil {
				return nil, fmt.Errorf("kafka offsets of %s: %w", topic, o.Error)
			}
			from, ok := at[o.Partition]
			if !ok || from < 0 { // nothing committed yet: the group starts at the beginning
				from = o.FirstOffset
			}
			total += max(0, o.LastOffset-from)
		}
		lag[topic] = total
	}
	return lag, nil
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
