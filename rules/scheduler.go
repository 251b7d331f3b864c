package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"proctor/store"
)

// checkDebounce delays a re-evaluation after new input, so a burst of events or evidence frames
// costs one evaluation, not one each.
const checkDebounce = 2 * time.Second

// MarkDirty asks for the session's timing rules to run soon (within checkDebounce), keeping an
// earlier pending check. Call it inside the transaction that stored the new input.
func MarkDirty(tx *gorm.DB, sessionID string, now time.Time) error {
	at := now.Add(checkDebounce).UnixMilli()
	return tx.Model(&store.Session{}).
		Where("id = ? AND (next_check_at_ms = 0 OR next_check_at_ms > ?)", sessionID, at).
		Update("next_check_at_ms", at).Error
}

// RunScheduler evaluates the timing rules of every session whose check is due, every tick, until
// ctx ends. It is what fires deadlines with no new input (uploads not done 30 min after the end).
// Several workers may run it: a session is claimed by a conditional update before it is
// evaluated, and flags are unique anyway.
func (e *Engine) RunScheduler(ctx context.Context, st *store.Store, tick time.Duration, log *slog.Logger) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if err := e.RunDueChecks(ctx, st, time.Now()); err != nil && ctx.Err() == nil {
			log.Warn("timing checks failed; retrying next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunDueChecks evaluates the sessions whose check is due at now.
func (e *Engine) RunDueChecks(ctx context.Context, st *store.Store, now time.Time) error {
	var due []store.Session
	err := st.DB.WithContext(ctx).Select("id, next_check_at_ms").
		Where("next_check_at_ms > 0 AND next_check_at_ms <= ?", now.UnixMilli()).
		Order("next_check_at_ms").Limit(200).Find(&due).Error
	if err != nil {
		return err
	}
	// One session whose checks fail must not hold back the others: go on, report all.
	var errs []error
	for _, s := range due {
		err := st.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			// Claim: push the check out so another worker skips it; ApplyTiming sets the real next one.
			res := tx.Model(&store.Session{}).Where("id = ? AND next_check_at_ms = ?", s.ID, s.NextCheckAtMs).
				Update("next_check_at_ms", now.Add(time.Minute).UnixMilli())
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error
			}
			return e.ApplyTiming(tx, s.ID, now)
		})
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, fmt.Errorf("session %s: %w", s.ID, err))
		}
	}
	return errors.Join(errs...)
}
