package rowcopy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/zdm-io/zdm/dataplane/milvus"

	"github.com/zdm-io/zdm/domain"
)

// occupied names the source's collections (db/name) of which the target
// already holds rows. Provisioners hand over empty targets; this catches a
// target written to between its provisioning and the plan.
func occupied(ctx context.Context, dst *milvus.Conn, src *milvus.Inventory) ([]string, error) {
	want := map[string]bool{}
	for col := range src.All() {
		want[col.Key()] = true
	}
	have, err := dst.Outline(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for col := range have.All() {
		if !want[col.Key()] {
			continue
		}
		n, err := dst.Count(ctx, col)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out = append(out, col.Key())
		}
	}
	return out, nil
}

// CheckSource refuses a source with a bulk import in progress (R5): the
// imported rows would reach the source around the capture.
func (c *Copier) CheckSource(ctx context.Context, m *domain.Migration) error {
	src, err := milvus.Connect(ctx, c.resolve, m.Source.ID, "source")
	if err != nil {
		return err
	}
	defer src.Close()
	running, err := src.RunningImports(ctx)
	if err != nil {
		return &domain.StepError{Reason: "source_unreachable", Err: err}
	}
	if len(running) > 0 {
		return &domain.StepError{Reason: "source_import_running", Permanent: true,
			Err: fmt.Errorf("the source has bulk imports in progress (%s); wait for them to end, then start the migration again", strings.Join(running, "; "))}
	}
	return nil
}

// Preflight is what the copy found before it started.
type Preflight struct {
	SourceVersion string            `json:"source_version"`
	TargetVersion string            `json:"target_version"`
	Databases     int               `json:"databases"`
	Collections   int               `json:"collections"`
	Rows          int64             `json:"rows"`
	Notes         []string          `json:"notes,omitempty"`
	AutoID        []string          `json:"auto_id_collections,omitempty"`
	Inventory     *milvus.Inventory `json:"inventory"`
	Unloaded      []string          `json:"loaded_for_copy,omitempty"`
	Refusals      []string          `json:"refusals,omitempty"`
}

// Plan reads the source and cuts every partition into key ranges.
func (c *Copier) Plan(ctx context.Context, m *domain.Migration) (domain.CopyStarted, error) {
	src, err := milvus.Connect(ctx, c.resolve, m.Source.ID, "source")
	if err != nil {
		return domain.CopyStarted{}, err
	}
	defer src.Close()
	dst, err := milvus.Connect(ctx, c.resolve, m.TargetCluster.ClusterID, "target")
	if err != nil {
		return domain.CopyStarted{}, err
	}
	defer dst.Close()
	inv, err := src.Outline(ctx)
	if err != nil {
		return domain.CopyStarted{}, err
	}
	pf := Preflight{SourceVersion: inv.Version, Inventory: inv, Databases: len(inv.Databases)}
	pf.TargetVersion, _ = dst.Version(ctx)
	if milvus.CompareVersions(pf.TargetVersion, pf.SourceVersion) < 0 {
		pf.Refusals = append(pf.Refusals, fmt.Sprintf("the target runs Milvus %s, older than the source's %s", pf.TargetVersion, pf.SourceVersion))
	}
	held, err := occupied(ctx, dst, inv)
	if err != nil {
		return domain.CopyStarted{}, &domain.StepError{Reason: "target_unreachable", Err: err}
	}
	for _, key := range held {
		pf.Refusals = append(pf.Refusals, fmt.Sprintf("the target already holds rows of %s: the copy inserts, and would write them twice; start from a target without it", key))
	}
	var plan domain.CopyStarted
	for col := range inv.All() {
		pf.Collections++
		pf.Refusals = append(pf.Refusals, milvus.Uncopiable(col)...)
		if pk := col.PrimaryField(); pk.GetAutoID() {
			pf.AutoID = append(pf.AutoID, col.Key())
		}
		if !col.Loaded {
			// Queries need a loaded collection; it is released after.
			if err := src.Load(ctx, col.Database, col.Name); err != nil {
				return plan, fmt.Errorf("load %s for the copy: %w", col.Key(), err)
			}
			pf.Unloaded = append(pf.Unloaded, col.Key())
		}
		// The plan's keys need no strong reads: its last range is open
		// above, so the ranges cover whatever is written after.
		ts := c.readTimestamp(ctx, src, col)
		if col.Rows, err = src.CountAt(ctx, col.Database, col.Name, "", ts); err != nil {
			return plan, err
		}
		pf.Rows += col.Rows
		cp := domain.CollectionPlan{Database: col.Database, Collection: col.Name, Rows: col.Rows, ReadTS: ts}
		for _, part := range copyPartitions(col) {
			ranges, err := planRanges(ctx, src, col, part, c.cfg.RangeRowsFor(col.Schema), ts)
			if err != nil {
				return plan, err
			}
			for _, r := range ranges {
				cp.Ranges = append(cp.Ranges, r.Name())
			}
		}
		if !col.Loaded {
			// The copy loads it again; until then the source is as it was.
			if err := src.Release(ctx, col.Database, col.Name); err != nil {
				return plan, err
			}
		}
		plan.Collections = append(plan.Collections, cp)
	}
	if len(pf.AutoID) > 0 {
		pf.Notes = append(pf.Notes, autoIDNote(m, pf))
		if m.Options.AutoID != domain.AutoIDPreserveKeys {
			pf.Refusals = append(pf.Refusals, "collections with autoID keys need options.auto_id = preserve_keys (see the note)")
		}
	}
	plan.Preflight, _ = json.Marshal(pf)
	c.mu.Lock()
	c.fresh[m.ID] = len(pf.Refusals) == 0
	c.mu.Unlock()
	if len(pf.Refusals) > 0 {
		return plan, &domain.StepError{Reason: "preflight_refused", Permanent: true, Err: fmt.Errorf("%s; preflight: %s", pf.Refusals[0], preflightSummary(pf))}
	}
	return plan, nil
}

func autoIDNote(m *domain.Migration, pf Preflight) string {
	return fmt.Sprintf("%d collections have autoID keys (%v). The target (Milvus %s) cannot accept explicit keys for an autoID field "+
		"(that needs Milvus 2.6.3+), so keeping the source's keys means a target field without autoID, marked zdm.auto_id: after "+
		"the switch, the zdm proxy gives keys to inserts that send none, as the source did; clients that bypass the proxy must send keys. "+
		"The other choice is to refuse the migration. Chosen: %s.",
		len(pf.AutoID), pf.AutoID, pf.TargetVersion, m.Options.AutoID)
}

func preflightSummary(pf Preflight) string {
	return fmt.Sprintf("%d databases, %d collections, %d rows; source %s, target %s", pf.Databases, pf.Collections, pf.Rows, pf.SourceVersion, pf.TargetVersion)
}

// copyPartitions lists the partitions rows are copied per; a collection
// with a partition key is copied whole (the server routes by key).
func copyPartitions(col *milvus.Collection) []string {
	if milvus.HasPartitionKeyField(col.Schema) {
		return []string{""}
	}
	return col.Partitions
}

func hasPartitionKey(col *milvus.Collection) bool { return copyPartitions(col)[0] == "" }
