package rowcopy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
	// CopyMode is how the copy moves rows (domain.CopyModeSegments or
	// domain.CopyModeRows), for the reason given. ByRows names the
	// collections a segment copy moves by rows, and why: earlier builds
	// copied those with autoID keys or a partition key so, before their
	// import was shown to give the same rows (segcopy_test.go). A copy
	// planned by one keeps to its plan, so that no collection is copied
	// both ways; this build plans none.
	CopyMode       string   `json:"copy_mode"`
	CopyModeReason string   `json:"copy_mode_reason"`
	ByRows         []string `json:"copied_by_rows,omitempty"`
}

// Plan reads the source's outline and makes the preflight report; the
// copy cuts each collection into key ranges when it reaches it.
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
	all := slices.Collect(inv.All())
	choose := func(probe string) (string, string, string) {
		return copyMode(m.Options.CopyMode, src.HasStorage(), dst.HasStorage(), probe, pf.SourceVersion, pf.TargetVersion)
	}
	mode, why, refusal := choose("")
	if mode == domain.CopyModeSegments {
		// Only a copy that would move segments looks for them.
		probe, err := sourceStorageProbe(ctx, src, all)
		if err != nil {
			return domain.CopyStarted{}, err
		}
		if probe != "" {
			mode, why, refusal = choose(probe)
		}
	}
	pf.CopyMode, pf.CopyModeReason = mode, why
	if refusal != "" {
		pf.Refusals = append(pf.Refusals, refusal)
	}
	for _, key := range held {
		pf.Refusals = append(pf.Refusals, fmt.Sprintf("the target already holds rows of %s: the copy inserts, and would write them twice; start from a target without it", key))
	}
	for _, col := range all {
		pf.Collections++
		pf.Refusals = append(pf.Refusals, milvus.Uncopiable(col)...)
		if pk := col.PrimaryField(); pk.GetAutoID() {
			pf.AutoID = append(pf.AutoID, col.Key())
		}
	}
	// Each collection's ranges are cut by the copy when it reaches it (a
	// flush, a count and a query per range: a few tenths of a second), so
	// the first rows move while the others are planned. The plan gives
	// the server's estimate of its rows, which takes one call.
	var plan domain.CopyStarted
	plan.Collections = make([]domain.CollectionPlan, len(all))
	partly := make([]string, len(all))
	err = inParallel(ctx, all, c.cfg.Planners, func(ctx context.Context, i int, col *milvus.Collection) error {
		n, err := src.EstimatedRows(ctx, col.Database, col.Name)
		col.Rows = n // the preflight's inventory shows it too
		plan.Collections[i] = domain.CollectionPlan{Database: col.Database, Collection: col.Name, Rows: n}
		if err != nil || !col.Loaded {
			return err
		}
		unloaded, err := src.UnloadedPartitions(ctx, col.Database, col)
		if len(unloaded) > 0 {
			partly[i] = fmt.Sprintf("%s has only some of its partitions loaded (not %v), and queries see only those: "+
				"zdm reads and checks a collection whole, and does not change what your applications loaded; "+
				"load the whole collection, or release it (zdm then loads it for the copy and releases it after), and start again", col.Key(), unloaded)
		}
		return err
	})
	if err != nil {
		return plan, err
	}
	for _, why := range partly {
		if why != "" {
			pf.Refusals = append(pf.Refusals, why)
		}
	}
	for _, col := range all {
		pf.Rows += col.Rows
		if !col.Loaded {
			pf.Unloaded = append(pf.Unloaded, col.Key())
		}
	}
	if len(pf.AutoID) > 0 {
		pf.Notes = append(pf.Notes, autoIDNote(m, pf))
		if m.Options.AutoID != domain.AutoIDPreserveKeys {
			pf.Refusals = append(pf.Refusals, "collections with autoID keys need options.auto_id = preserve_keys (see the note)")
		}
	}
	pf.Notes = append(pf.Notes, copyAccess(ctx, src, dst, len(pf.Refusals) == 0)...)
	pf.Notes = append(pf.Notes, databaseNotes(ctx, src, inv.Databases)...)
	plan.Preflight, _ = json.Marshal(pf)
	c.mu.Lock()
	c.fresh[m.ID] = len(pf.Refusals) == 0
	c.mu.Unlock()
	if len(pf.Refusals) > 0 {
		return plan, &domain.StepError{Reason: "preflight_refused", Permanent: true, Err: fmt.Errorf("%s; preflight: %s", pf.Refusals[0], preflightSummary(pf))}
	}
	return plan, nil
}

// planCollection counts a loaded collection's rows and cuts its
// partitions into key ranges, read at a timestamp taken now: the copy
// plans a collection once its capture is armed, so every write the source
// acknowledged before is stamped earlier and every write after is
// journaled.
func (c *Copier) planCollection(ctx context.Context, src *milvus.Conn, col *milvus.Collection) (domain.CollectionPlan, error) {
	cp := domain.CollectionPlan{Database: col.Database, Collection: col.Name}
	// The plan's keys need no strong reads: its last range is open
	// above, so the ranges cover whatever is written after.
	ts := c.readTimestamp(ctx, src, col)
	rows, err := src.CountAt(ctx, col.Database, col.Name, "", ts)
	if err != nil {
		return cp, err
	}
	cp.Rows, cp.ReadTS = rows, ts
	for _, part := range copyPartitions(col) {
		ranges, err := planRanges(ctx, src, col, part, c.cfg.RangeRowsFor(col.Schema), ts)
		if err != nil {
			return cp, err
		}
		for _, r := range ranges {
			cp.Ranges = append(cp.Ranges, r.Name())
		}
	}
	return cp, nil
}

// copyAccess gives the target the source's roles, their privileges and
// the roles of users both clusters have (when give: the preflight passed),
// before any row, so an application moved to the target early finds what
// it may do there. It returns the notes for the operator: the users the
// target lacks, which zdm cannot make (Milvus never reveals a password),
// and an application signing in as one is refused there after the
// switch; the roles it lacks, when they were not copied; and why a copy
// failed.
func copyAccess(ctx context.Context, src, dst *milvus.Conn, give bool) []string {
	have, err := src.AccessControl(ctx)
	if err != nil {
		return []string{"The source's users, roles and privileges could not be read (" + err.Error() + "): check that the target has every user your applications sign in as, with the same password, and their roles."}
	}
	got, err := dst.AccessControl(ctx)
	if err != nil {
		return []string{"The target's users, roles and privileges could not be read (" + err.Error() + "): check that it has every user your applications sign in as, with the same password, and their roles."}
	}
	var notes []string
	users, roles := have.Lacks(got.Access)
	if give {
		if err := milvus.CopyAccess(ctx, dst, have, got); err != nil {
			notes = append(notes, "The source's roles and privileges could not be copied to the target ("+err.Error()+
				"): give them there before the switch, or applications are refused what they may do on the source.")
		} else {
			roles = nil
		}
	}
	switch {
	case len(users) > 0:
		notes = append(notes, fmt.Sprintf("The target lacks users %v of the source. zdm copies roles, their privileges and the roles of users both clusters have, "+
			"but cannot make a user (Milvus never reveals a password): before the switch, create them on the target with the same passwords, "+
			"and give them their roles, or applications that sign in as them are refused there once the proxy routes to it. "+
			"Users made or changed through the proxy during the migration are made on the target alike.", users))
	case len(roles) > 0:
		notes = append(notes, fmt.Sprintf("The target lacks roles %v of the source: give them there, with their privileges, before the switch.", roles))
	}
	return notes
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

// preparer makes the collections of a copy ready, one call per collection.
type preparer struct {
	c        *Copier
	src, dst *milvus.Conn
	m        *domain.Migration
	choices
	checkpoint func(context.Context, domain.BulkCopyProgressed) error
	// helping is set on a zdmd that copies for the one that drives.
	helping bool
}

// prepare makes a collection ready to copy: made on the target, loaded on
// both sides, planned if it was not. It returns the collection (nil for
// one skipped, or dropped on the source) and its ranges left to copy.
func (r preparer) prepare(ctx context.Context, p *domain.CollectionProgress) (*milvus.Collection, []job, error) {
	src, dst := r.src, r.dst
	if p.Skipped != "" {
		return nil, nil, nil
	}
	col, err := src.Structure(ctx, p.Database, p.Collection)
	if isCollectionGone(ctx, src, p.Database, p.Collection, err) {
		return nil, nil, r.checkpoint(ctx, domain.BulkCopyProgressed{Database: p.Database, Collection: p.Collection, Skipped: "dropped on the source during the copy"})
	}
	if err != nil || p.Done {
		return col, nil, err
	}
	if err := createOnTarget(ctx, dst, col, r.m); err != nil {
		return col, nil, err
	}
	if r.segments && !r.byRows[col.Key()] {
		// No query reaches the source: it is not loaded for the copy.
		// The target loads the collection once it imported every
		// segment, while the other collections are copied: one loaded
		// before would answer without the segments imported into it
		// until its query coordinator next renewed what it serves.
		// (Milvus 2.3 can be asked to renew it at once, a load with
		// refresh set, but on the test bed that took 2.5-10.6 s against
		// 3.5-4.6 s for a load of the imported collection: measured once,
		// see docs/benchmarks.md.)
		if err := r.copySegments(ctx, p, col); err != nil || r.loadedForCopy[col.Key()] {
			return col, nil, err
		}
		return col, nil, r.startTargetLoad(ctx, col)
	}
	if !r.loadedForCopy[col.Key()] {
		if err := r.startTargetLoad(ctx, col); err != nil {
			return col, nil, err
		}
	}
	if !col.Loaded {
		if err := src.Load(ctx, col.Database, col.Name); err != nil {
			return col, nil, err
		}
	}
	planned, ts := p.Planned, p.ReadTS
	if len(planned) == 0 {
		cp, err := r.c.planCollection(ctx, src, col)
		if err != nil {
			return col, nil, err
		}
		// Recorded before any range is copied: after a restart the
		// checkpoints name these ranges.
		if err := r.checkpoint(ctx, domain.BulkCopyProgressed{Database: p.Database, Collection: p.Collection, Plan: &cp}); err != nil {
			return col, nil, err
		}
		planned, ts = cp.Ranges, cp.ReadTS
	} else if ts == 0 {
		// The plan read strongly (no timestamp then); a timestamp taken
		// now, with the capture armed, is as good and faster.
		ts = r.c.readTimestamp(ctx, src, col)
	}
	var jobs []job
	for _, name := range planned {
		if _, done := p.DoneRanges[name]; done {
			continue
		}
		kr, err := milvus.ParseRange(name)
		if err != nil {
			return col, nil, err
		}
		jobs = append(jobs, job{col: col, r: kr, ts: ts})
	}
	if len(jobs) == 0 {
		return col, nil, r.checkpoint(ctx, domain.BulkCopyProgressed{Database: p.Database, Collection: p.Collection, Range: "empty", Done: true})
	}
	return col, jobs, nil
}
