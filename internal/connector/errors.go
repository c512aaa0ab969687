package connector

import (
	"errors"
	"time"
)

// Class says what the engine should do about an error.
type Class int

const (
	Transient Class = iota // retry with backoff
	Throttled              // wait RetryAfter, then retry
	Permanent              // this object only: record it and go on
	Fatal                  // the whole pass for this item: stop with a clear status
)

// Error carries a class with the error a connector hit.
type Error struct {
	Class      Class
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Classify wraps err with a class.
func Classify(class Class, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Class: class, Err: err}
}

// ClassOf reports the class of err; unclassified errors count as transient.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return Transient
}

// Notice is what a target returns, with the copy's reference, when it stored an object but not as
// it should have been (a message it could not read, kept whole as an attachment): the copy counts
// and is not made again, and the reason goes to the item's report as the object's error.
type Notice struct{ Reason string }

func (n *Notice) Error() string { return n.Reason }

// IsNotice reports whether err is a Notice: a copy made, with a reason to report.
func IsNotice(err error) bool {
	var n *Notice
	return errors.As(err, &n)
}
