package handlers

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// Mailer sends a notification.
type Mailer interface {
	Send(ctx context.Context, n domain.Notification) error
}

// Notifier is the reactor that emails the operator: the lag first under
// the threshold (R8), a failure, the switch, and a warning a day before
// the sync time limit. Each email is recorded as an event, so a restart
// never sends it again.
type Notifier struct {
	svc      *Service
	mailer   Mailer
	defaults []string
	syncing  func() []string
	logger   *slog.Logger
}

// NewNotifier returns a notifier; defaults receive every email, syncing
// lists the migrations in their sync (for the time-limit warning).
func NewNotifier(svc *Service, mailer Mailer, defaults []string, syncing func() []string) *Notifier {
	return &Notifier{svc: svc, mailer: mailer, defaults: defaults, syncing: syncing, logger: svc.logger.With("part", "notify")}
}

// Handle reacts to a migration's events; an error retries the message.
func (n *Notifier) Handle(ctx context.Context, subject string, records []domain.Record) error {
	id := strings.TrimPrefix(subject, domain.MigrationSubject)
	for _, r := range records {
		kind := ""
		switch r.Event.(type) {
		case domain.LagThresholdReached:
			kind = domain.NotifyLagUnderThreshold
		case domain.Failed:
			kind = domain.NotifyFailed
		case domain.SwitchedOver:
			kind = domain.NotifySwitchedOver
		}
		if kind != "" {
			if err := n.send(ctx, id, kind); err != nil {
				return err
			}
		}
	}
	return nil
}

// send emails once: a kind already recorded is not sent again.
func (n *Notifier) send(ctx context.Context, id, kind string) error {
	m, err := n.svc.Migration(ctx, id)
	if err != nil {
		return err
	}
	if m.Notifications[kind] {
		return nil
	}
	// An address both in the migration's list and in the configured
	// recipients gets the email once.
	var to []string
	for _, a := range append(slices.Clone(m.Options.Notify), n.defaults...) {
		if !slices.ContainsFunc(to, func(b string) bool { return strings.EqualFold(a, b) }) {
			to = append(to, a)
		}
	}
	if len(to) == 0 {
		return nil
	}
	var refused map[string]string
	if err := n.mailer.Send(ctx, domain.Notification{Kind: kind, To: to, Migration: m}); err != nil {
		var r refusal
		if !errors.As(err, &r) {
			n.logger.Warn("email not sent; retrying", "migration", id, "kind", kind, "err", err)
			return err
		}
		// Refused for good: tried again, it would be refused again, and
		// hold up every email after it. The migration's view says whom.
		var all bool
		refused, all = r.RefusedRecipients()
		n.logger.Error("the mail server refused an email for good; it is not sent again", "migration", id, "kind", kind, "err", err)
		if all {
			to = []string{} // "recipients": [], as the document says, not null
		} else {
			to = slices.DeleteFunc(to, func(a string) bool { _, ok := refused[a]; return ok })
		}
	}
	// Sent is recorded even when zdmd is stopping (ctx ended): left
	// unrecorded, the event is handled again after the restart and the
	// email sent twice.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err = n.svc.Record(rctx, id, id+"/notify/"+kind, domain.RecordNotification{Kind: kind, Recipients: to, Refused: refused})
	return err
}

// refusal is an email the mail server refused for good, to the
// recipients returned (all: to every one).
type refusal interface {
	error
	RefusedRecipients() (to map[string]string, all bool)
}

// WatchTimeLimits warns, a day before it, of a sync time limit (R10) that
// will end a migration, checking every interval until ctx ends.
func (n *Notifier) WatchTimeLimits(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, id := range n.syncing() {
			m, err := n.svc.Migration(ctx, id)
			if err != nil || m.State != domain.StateSyncing {
				continue
			}
			if !n.svc.clock.Now().Before(m.SyncDeadline().Add(-domain.SyncTimeLimitWarning)) {
				if err := n.send(ctx, id, domain.NotifyTimeLimitWarning); err != nil {
					n.logger.Warn("time limit warning not sent", "migration", id, "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
