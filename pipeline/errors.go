package pipeline

import "errors"

// PermanentError marks a handler error that retrying can never fix (a
// message that does not decode, a payload the analyzers reject). The
// consumer writes such a message to the dead-letter topic and moves on; every
// other error is treated as transient and the message is retried.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that IsPermanent reports true for it, also after
// further wrapping with %w. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		return err
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or an error it wraps, is a PermanentError.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}
