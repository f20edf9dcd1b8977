// Package retry is the one retry policy of zdm: how many tries, and the
// pause after each failed one, growing from First by Factor up to Max.
// Every retry in zdm uses it and honours its caller's context; the
// policies are set in zdmd.yaml under retry.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Policy is how an operation is retried.
type Policy struct {
	// Attempts bounds the tries; 0 retries until the context ends.
	Attempts int `yaml:"attempts"`
	// First is the pause after the first failed try.
	First time.Duration `yaml:"first"`
	// Factor multiplies the pause after each further failure (default 2).
	Factor float64 `yaml:"factor"`
	// Max caps the pause (0: no cap).
	Max time.Duration `yaml:"max"`
}

// Validate names the first setting out of range, under prefix (the
// policy's key in the configuration).
func (p Policy) Validate(prefix string) error {
	switch {
	case p.Attempts < 0:
		return fmt.Errorf("%s.attempts must not be negative (%d)", prefix, p.Attempts)
	case p.First < 0:
		return fmt.Errorf("%s.first must not be negative (%s)", prefix, p.First)
	case p.Max < 0:
		return fmt.Errorf("%s.max must not be negative (%s)", prefix, p.Max)
	case p.Factor != 0 && p.Factor < 1:
		return fmt.Errorf("%s.factor must be at least 1 (%g)", prefix, p.Factor)
	}
	return nil
}

// Or fills the settings p leaves at zero from def.
func (p Policy) Or(def Policy) Policy {
	if p.Attempts == 0 {
		p.Attempts = def.Attempts
	}
	if p.First == 0 {
		p.First = def.First
	}
	if p.Factor == 0 {
		p.Factor = def.Factor
	}
	if p.Max == 0 {
		p.Max = def.Max
	}
	return p
}

// Pause is the wait after failed try n (1 for the first).
func (p Policy) Pause(n int) time.Duration {
	factor := p.Factor
	if factor == 0 {
		factor = 2
	}
	d := float64(p.First)
	for i := 1; i < n; i++ {
		d *= factor
		if p.Max > 0 && d >= float64(p.Max) {
			return p.Max
		}
	}
	if p.Max > 0 && d > float64(p.Max) {
		return p.Max
	}
	return time.Duration(d)
}

// Wait pauses after failed try n, or returns ctx's error when it ends
// first.
func (p Policy) Wait(ctx context.Context, n int) error {
	t := time.NewTimer(p.Pause(n))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Span is the sum of the pauses between all the policy's tries: how long
// it waits at most, besides the tries themselves (0 when Attempts is 0).
func (p Policy) Span() time.Duration {
	var d time.Duration
	for n := 1; n < p.Attempts; n++ {
		d += p.Pause(n)
	}
	return d
}

// Last reports whether try n was the last the policy allows.
func (p Policy) Last(n int) bool { return p.Attempts > 0 && n >= p.Attempts }

// permanent marks an error that no retry can mend.
type permanent struct{ err error }

func (e permanent) Error() string { return e.err.Error() }
func (e permanent) Unwrap() error { return e.err }

// Stop wraps err so that Do returns it at once instead of retrying.
func Stop(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Do runs op until it succeeds, returns an error wrapped by Stop, uses
// the policy's tries, or ctx ends; it returns op's last error (unwrapped
// from Stop), or ctx's when ctx ended during a pause. op is told its try's
// number, from 1.
func (p Policy) Do(ctx context.Context, op func(attempt int) error) error {
	for n := 1; ; n++ {
		err := op(n)
		var stop permanent
		if errors.As(err, &stop) {
			return stop.err
		}
		if err == nil || p.Last(n) || ctx.Err() != nil {
			return err
		}
		if werr := p.Wait(ctx, n); werr != nil {
			return err
		}
	}
}
