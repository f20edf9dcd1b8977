package domain

import (
	"errors"
	"testing"
)

// A newer lease term takes a migration over; an older one is fenced off,
// and taking it again changes nothing.
func TestTakingDrivingFencesOlderTerms(t *testing.T) {
	m := migrationIn(StateCopying)
	events, err := Decide(m, TakeDriving{Instance: "zdmd-1", Term: 5})
	if err != nil || len(events) != 1 || events[0] != (DriverChanged{Instance: "zdmd-1", Term: 5}) {
		t.Fatalf("first driver: %v %v", events, err)
	}
	if err := m.Apply(Record{Seq: m.Seq() + 1, Event: events[0]}); err != nil {
		t.Fatal(err)
	}
	if events, err := Decide(m, TakeDriving{Instance: "zdmd-1", Term: 5}); err != nil || len(events) != 0 {
		t.Fatalf("the same term again: %v %v", events, err)
	}
	if _, err := Decide(m, TakeDriving{Instance: "zdmd-3", Term: 4}); !errors.Is(err, ErrFenced) {
		t.Fatalf("an older term: %v, want ErrFenced", err)
	}
	if events, err := Decide(m, TakeDriving{Instance: "zdmd-2", Term: 9}); err != nil || len(events) != 1 {
		t.Fatalf("a newer term: %v %v", events, err)
	}
	if events, err := Decide(migrationIn(StateSwitchedOver), TakeDriving{Instance: "zdmd-2", Term: 9}); err != nil || len(events) != 0 {
		t.Fatalf("an ended migration: %v %v", events, err)
	}
}
