package worker

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"proctor/store"
)

// A session deleted on request or by the retention sweeper may still have messages in Kafka
// (Kafka deletes no single message). The handlers drop them, count them here, and raise
// nothing: no dead letter (which would copy the personal data again), no retry.

// deletedMessages counts the dropped messages per topic kind (frames, enrollments, audio,
// events). Every handler asks for it; the first registers it.
func deletedMessages(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proctor_deleted_session_messages_total",
		Help: "Messages dropped because their session was deleted (on request or under the retention policy).",
	}, []string{"kind"})
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// errSessionGone: the session was deleted while the message was being handled; the retry finds
// its tombstone and drops the message.
var errSessionGone = errors.New("session deleted while its message was handled")

// checkAlive is the in-transaction guard of a write for session id: it waits for a deletion in
// progress (PostgreSQL row lock) and refuses to write rows of a deleted session, which would
// otherwise outlive the deletion.
func checkAlive(tx *gorm.DB, postgres bool, id string) error {
	if ok, err := store.SessionExists(tx, postgres, id); err != nil || ok {
		return err
	}
	gone, err := store.SessionDeleted(tx, id)
	if err != nil {
		return err
	}
	if gone {
		return fmt.Errorf("session %s: %w", id, errSessionGone)
	}
	return nil
}
