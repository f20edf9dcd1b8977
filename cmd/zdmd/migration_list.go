package main

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
)

// migrationList prints the migrations, newest first, as a table of their
// summaries (the API's view=summary: a list of large migrations stays
// small), or with --json the API's answer, full views unless --summary.
func migrationList(fs *flag.FlagSet, newClient func() (*client, error), args []string, stdout io.Writer) error {
	state := fs.String("state", "", "only these: running, ended or states (copying, syncing, failed…), comma-separated")
	source := fs.String("source", "", "only the migrations of this source cluster ID")
	limit := fs.Int("limit", 0, "print at most this many, the newest (1 to 1000; default: all)")
	after := fs.String("after", "", "start after this migration ID (the one the last page named)")
	summary := fs.Bool("summary", false, "with --json, the summaries the table is made of")
	var out struct {
		Migrations []projections.MigrationView `json:"migrations"`
		More       bool                        `json:"more"`
		NextAfter  string                      `json:"next_after"`
	}
	path := func(asJSON bool) string {
		view := ""
		if !asJSON || *summary {
			view = "summary"
		}
		return listPath("/v1/migrations", map[string]string{"state": *state, "source_cluster_id": *source, "after": *after,
			"limit": pageSize(*limit), "view": view})
	}
	if table, err := listed(fs, newClient, args, path, &out, stdout); !table {
		return flagNamed(err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSTAGE\tSOURCE\tTARGET\tROWS\tLAG\tSTARTED")
	for _, m := range out.Migrations {
		lag := "-"
		if m.LagSeconds != nil && !domain.IsTerminal(m.State) {
			lag = humanDuration(time.Duration(*m.LagSeconds * float64(time.Second)))
		}
		source := m.Source.Name
		if source == "" {
			source = m.SourceClusterID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", m.ID, m.State, m.Stage, source, m.Target.Name,
			m.Progress.RowsCopied, m.Progress.RowsTotal, lag, m.CreatedAt.UTC().Format("2006-01-02 15:04"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if out.More {
		fmt.Fprintf(stdout, "more: the next ones with --after %s\n", out.NextAfter)
	}
	return nil
}
