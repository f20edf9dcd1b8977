package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPausesGrowByTheFactorUpToTheCap(t *testing.T) {
	p := Policy{First: 100 * time.Millisecond, Factor: 3, Max: time.Second}
	want := []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := p.Pause(i + 1); got != w {
			t.Fatalf("pause after try %d = %s, want %s", i+1, got, w)
		}
	}
	if got := (Policy{First: time.Millisecond}).Pause(4); got != 8*time.Millisecond {
		t.Fatalf("default factor: pause after try 4 = %s, want 8ms", got)
	}
}

func TestDoStopsAtSuccessAtTheLastTryOrAtAStop(t *testing.T) {
	ctx := context.Background()
	p := Policy{Attempts: 4, First: time.Microsecond}
	boom := errors.New("boom")
	tries := 0
	if err := p.Do(ctx, func(int) error { tries++; return boom }); !errors.Is(err, boom) || tries != 4 {
		t.Fatalf("a failing op: %d tries, %v", tries, err)
	}
	tries = 0
	if err := p.Do(ctx, func(n int) error {
		tries++
		if n < 3 {
			return boom
		}
		return nil
	}); err != nil || tries != 3 {
		t.Fatalf("an op that mends: %d tries, %v", tries, err)
	}
	tries = 0
	err := p.Do(ctx, func(int) error { tries++; return Stop(boom) })
	if err != boom || tries != 1 {
		t.Fatalf("a stopped op: %d tries, %v (want the error itself)", tries, err)
	}
}

// A cancelled context ends the pause at once: nothing sleeps past its
// caller.
func TestDoHonoursItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := Policy{First: time.Hour}
	boom := errors.New("boom")
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	done := make(chan error, 1)
	go func() { done <- p.Do(ctx, func(int) error { return boom }) }()
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Fatalf("got %v, want the op's last error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled retry kept waiting")
	}
}

func TestValidateNamesTheSetting(t *testing.T) {
	for _, c := range []struct {
		p    Policy
		want string
	}{
		{Policy{Attempts: -1}, "retry.copy.attempts"},
		{Policy{First: -1}, "retry.copy.first"},
		{Policy{Max: -1}, "retry.copy.max"},
		{Policy{Factor: 0.5}, "retry.copy.factor"},
	} {
		err := c.p.Validate("retry.copy")
		if err == nil || len(err.Error()) < len(c.want) || err.Error()[:len(c.want)] != c.want {
			t.Fatalf("%+v: %v, want it to name %s", c.p, err, c.want)
		}
	}
	if err := (Policy{Attempts: 3, First: time.Second, Factor: 2, Max: time.Minute}).Validate("x"); err != nil {
		t.Fatal(err)
	}
}

func TestSpanIsThePausesBetweenAllTries(t *testing.T) {
	p := Policy{Attempts: 4, First: 100 * time.Millisecond, Max: 300 * time.Millisecond}
	if got, want := p.Span(), 100*time.Millisecond+200*time.Millisecond+300*time.Millisecond; got != want {
		t.Fatalf("span = %s, want %s", got, want)
	}
	if got := (Policy{First: time.Second}).Span(); got != 0 {
		t.Fatalf("span of a policy without attempts = %s, want 0", got)
	}
}
