package milvus

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// fingerprint is what the forbidden operations change: collections and
// their fields, properties and aliases, per database.
func fingerprint(inv *Inventory) map[string]string {
	out := map[string]string{}
	for _, d := range inv.Databases {
		out["database "+d.Name] = "exists"
		for _, c := range d.Collections {
			var fields []string
			for _, f := range c.Fields {
				fields = append(fields, fmt.Sprintf("%s:%s:pk=%v:auto=%v:dim=%d:len=%d", f.Name, f.Type, f.PrimaryKey, f.AutoID, f.Dim, f.MaxLength))
			}
			props := make([]string, 0, len(c.Properties))
			for k, v := range c.Properties {
				props = append(props, k+"="+v)
			}
			sort.Strings(props)
			out["collection "+c.Key()] = fmt.Sprintf("fields [%s] properties [%s] aliases %v dynamic %v",
				strings.Join(fields, " "), strings.Join(props, " "), c.Aliases, c.DynamicField)
		}
	}
	return out
}

// changes lists what differs between two fingerprints, in words.
func changes(before, after map[string]string) []string {
	var out []string
	for k, v := range before {
		switch w, ok := after[k]; {
		case !ok:
			out = append(out, k+" is gone (dropped or renamed)")
		case w != v:
			out = append(out, fmt.Sprintf("%s changed: %s -> %s", k, v, w))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, k+" appeared")
		}
	}
	sort.Strings(out)
	return out
}

// watchSchema compares the source's fingerprint with the last one taken
// after the proxy let DDL through; a change made around the proxy fails
// the migration, naming it.
func (s *Syncer) watchSchema(ctx context.Context, m *domain.Migration) {
	read := func() (map[string]string, error) {
		src, err := Connect(ctx, s.resolve, m.Source.ID, "source")
		if err != nil {
			return nil, err
		}
		defer src.Close()
		inv, err := src.Outline(ctx)
		if err != nil {
			return nil, err
		}
		return fingerprint(inv), nil
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
			if diff := changes(without(base, touched), without(fp, touched)); len(diff) > 0 {
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

// without is fp less the keys drop says.
func without(fp map[string]string, drop func(key string) bool) map[string]string {
	out := make(map[string]string, len(fp))
	for k, v := range fp {
		if !drop(k) {
			out[k] = v
		}
	}
	return out
}
