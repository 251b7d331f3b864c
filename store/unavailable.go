package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// Unavailable reports whether err means the database as a whole cannot do its work right now
// (unreachable, restarting, timing out, out of disk, locked by contention), so that any other
// write would fail the same way and waiting is the cure. Everything else, a constraint or a
// value the database refuses (invalid UTF-8, NUL, out of range), is the row's own fault: the
// same write fails again however long one waits.
//
// The Kafka workers pause on the first kind and retry without limit; they give up on a message
// after a few tries of the second kind and dead-letter it, so one bad row never holds back the
// rest of its partition. The API answers the first kind 503 with Retry-After instead of 500: the
// same request will work once the database is back.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var connectErr *pgconn.ConnectError
	// SafeToRetry: pgx knows the statement never reached the server (connection lost, closed).
	if errors.As(err, &connectErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgUnavailable(pgErr.Code)
	}
	var liteErr sqlite3.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrNomem, sqlite3.ErrIoErr, sqlite3.ErrCorrupt,
			sqlite3.ErrFull, sqlite3.ErrCantOpen, sqlite3.ErrProtocol, sqlite3.ErrReadonly, sqlite3.ErrNotADB:
			return true
		}
		return false
	}
	// database/sql's own "sql: database is closed" is not exported; pgx says "conn closed" when
	// its connection died.
	msg := err.Error()
	return strings.Contains(msg, "sql: database is closed") || strings.Contains(msg, "conn closed")
}

// pgUnavailable classifies a PostgreSQL SQLSTATE (appendix A of the PostgreSQL manual).
func pgUnavailable(code string) bool {
	switch code {
	case "40001", // serialization_failure: a concurrent transaction, not this row
		"40P01", // deadlock_detected
		"55P03", // lock_not_available
		"57014", // query_canceled (statement_timeout)
		"57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now (starting up, recovering)
		"57P04", // database_dropped
		"57P05": // idle_session_timeout
		return true
	}
	if len(code) == 5 {
		switch code[:2] {
		case "08", // connection exception
			"53", // insufficient resources: disk full, out of memory, too many connections
			"58": // system error (I/O)
			return true
		}
	}
	return false
}

// IsDatabaseError reports whether err came from the database or its driver (a refused
// statement, a lost connection): such text may name tables, values or hosts, so handlers log it
// and answer without it.
func IsDatabaseError(err error) bool {
	var pgErr *pgconn.PgError
	var liteErr sqlite3.Error
	return errors.As(err, &pgErr) || errors.As(err, &liteErr) || Unavailable(err)
}
