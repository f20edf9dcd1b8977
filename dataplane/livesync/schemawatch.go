package livesync

import (
	"context"
	"strings"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus"

	"github.com/zdm-io/zdm/domain"
)

// watchSchema compares the source's fingerprint with the last one taken
// after the proxy let DDL through; a change made around the proxy fails
// the migration, naming it.
func (s *Syncer) watchSchema(ctx context.Context, m *domain.Migration) {
	read := func() (map[string]string, error) {
		src, err := milvus.Connect(ctx, s.resolve, m.Source.ID, "source")
		if err != nil {
			return nil, err
		}
		defer src.Close()
		inv, err := src.Outline(ctx)
		if err != nil {
			return nil, err
		}
		return milvus.Fingerprint(inv), nil
	}
	var base map[string]string
	taken := time.Now()
	tick := time.NewTicker(s.cfg.FingerprintEvery)
	defer tick.Stop()
	for {
		now := time.Now()
		fp, err := read()
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.logger.Warn("schema fingerprint of the source failed", "migration", m.ID, "err", err)
			}
		case base == nil:
			base, taken = fp, now
		default:
			// What DDL through the proxy touched is journaled, so its new
			// state is the expected one; any other change, even one made
			// meanwhile, was made around the proxy.
			touched := s.capture.DDLSince(m.ID, taken.Add(-time.Second))
			if diff := milvus.Changes(milvus.Without(base, touched), milvus.Without(fp, touched)); len(diff) > 0 {
				detail := "the source was changed around the zdm proxy: " + strings.Join(diff, "; ")
				if err := s.failer.FailMigration(context.WithoutCancel(ctx), m.ID, "changed_around_proxy", detail); err != nil {
					s.logger.Error("fail migration", "migration", m.ID, "err", err)
				}
				return
			}
			base, taken = fp, now
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
