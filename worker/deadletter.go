package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"proctor/pipeline"
	"proctor/store"
)

// DeadLetterRecorder is the handler of the dead-letter topic's consumer: it records each dead
// letter in the database (store.DeadLetter) so that admins can list and replay them. The topic
// stays the source of truth: a record that cannot be written (the database refuses it after
// MaxAttempts) leaves the message in the topic, where the consumer logs that it skipped it.
func DeadLetterRecorder(st *store.Store) pipeline.Handler {
	return func(ctx context.Context, m kafka.Message) error {
		d := store.DeadLetter{Key: append([]byte(nil), m.Key...), Payload: append([]byte(nil), m.Value...),
			Class: string(pipeline.ReasonInvalid), DeadAt: m.Time.UTC()}
		var orig []kafka.Header
		for _, h := range m.Headers {
			v := string(h.Value)
			switch h.Key {
			case pipeline.HeaderDLQReason:
				d.Reason = v
			case pipeline.HeaderDLQTopic:
				d.Topic = v
			case pipeline.HeaderDLQPartition:
				d.Partition, _ = strconv.Atoi(v)
			case pipeline.HeaderDLQOffset:
				d.Offset, _ = strconv.ParseInt(v, 10, 64)
			case pipeline.HeaderDLQGroup:
				d.Group = v
			case pipeline.HeaderDLQClass:
				d.Class = v
			case pipeline.HeaderDLQAttempts:
				d.Attempts, _ = strconv.Atoi(v)
			case pipeline.HeaderDLQTimeMs:
				if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
					d.DeadAt = time.UnixMilli(ms).UTC()
				}
			default:
				orig = append(orig, kafka.Header{Key: h.Key, Value: append([]byte(nil), h.Value...)})
			}
		}
		if d.Topic == "" {
			// Not written by a Consumer (someone produced to the topic by hand): record it
			// under the dead-letter topic's own coordinates, which are unique too.
			d.Topic, d.Partition, d.Offset = m.Topic, m.Partition, m.Offset
			d.Reason = "no dlq-topic header: not written by a proctor worker"
		}
		hdr, err := json.Marshal(orig)
		if err != nil {
			return pipeline.Permanent(err)
		}
		d.Headers = string(hdr)
		return st.RecordDeadLetter(ctx, &d)
	}
}

// ReplayResult counts what ReplayDeadLetters did.
type ReplayResult struct {
	Replayed []uint // produced to their topics again
	Skipped  []uint // replayed before (by someone else, or an earlier run): not sent twice
}

// ReplayDeadLetters produces the selected dead letters to their original topics again, with
// their original key and headers, oldest first, after a fix made them processable. Each is
// marked replayed (with actor, and audit-logged) before it is sent, so running the same replay
// twice, or two at once, sends each message once; the handlers' idempotent storage absorbs
// a message that was stored after all. A send that fails clears the mark and stops the replay.
func ReplayDeadLetters(ctx context.Context, st *store.Store, p *pipeline.Producer, f store.DeadLetterFilter, actor string) (ReplayResult, error) {
	var res ReplayResult
	list, err := st.DeadLettersForReplay(ctx, f)
	if err != nil {
		return res, err
	}
	for i := range list {
		d := &list[i]
		if d.ReplayedAt != nil {
			res.Skipped = append(res.Skipped, d.ID)
			continue
		}
		if err := st.ClaimDeadLetterReplay(ctx, d, actor); errors.Is(err, store.ErrAlreadyReplayed) {
			res.Skipped = append(res.Skipped, d.ID)
			continue
		} else if err != nil {
			return res, fmt.Errorf("dead letter %d: %w", d.ID, err)
		}
		var headers []kafka.Header
		if d.Headers != "" {
			if err := json.Unmarshal([]byte(d.Headers), &headers); err != nil {
				_ = st.UnclaimDeadLetterReplay(context.WithoutCancel(ctx), d.ID)
				return res, fmt.Errorf("dead letter %d: stored headers: %w", d.ID, err)
			}
		}
		msg := kafka.Message{Key: d.Key, Value: d.Payload, Headers: headers}
		if err := p.Send(ctx, d.Topic, msg); err != nil {
			_ = st.UnclaimDeadLetterReplay(context.WithoutCancel(ctx), d.ID)
			return res, fmt.Errorf("dead letter %d: produce to %s: %w", d.ID, d.Topic, err)
		}
		res.Replayed = append(res.Replayed, d.ID)
	}
	return res, nil
}
