package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
)

// clusterList prints the clusters, newest first, as a table, or with
// --json the API's answer; its flags are the API's filters.
func clusterList(fs *flag.FlagSet, newClient func() (*client, error), args []string, stdout io.Writer) error {
	org := fs.String("organization", "", "only the clusters of this organization")
	project := fs.String("project", "", "only the clusters of this project")
	status := fs.String("status", "", "only these statuses: Running, Locked, Syncing, Migrated (any case), comma-separated")
	spare := fs.Bool("spare", false, "only the spares")
	limit := fs.Int("limit", 0, "print at most this many, the newest (1 to 1000; default: all)")
	after := fs.String("after", "", "start after this cluster ID (the one the last page named)")
	var out struct {
		Clusters  []clusterJSON `json:"clusters"`
		More      bool          `json:"more"`
		NextAfter string        `json:"next_after"`
	}
	path := func(bool) string {
		only := ""
		if *spare {
			only = "true"
		}
		return listPath("/v1/clusters", map[string]string{"organization": *org, "project": *project, "status": *status,
			"spare": only, "limit": pageSize(*limit), "after": *after})
	}
	if table, err := listed(fs, newClient, args, path, &out, stdout); !table {
		return fieldFlag(err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tORGANIZATION/PROJECT\tENDPOINT\tSTATUS\tPROXY")
	for _, cl := range out.Clusters {
		proxy := cl.ProxyListen
		if cl.ProxyProblem != "" {
			proxy += " (not serving: see cluster show)"
		}
		status := cl.Status
		if cl.Spare {
			status += " (spare)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\n", cl.ID, cl.Name, cl.Organization, cl.Project, cl.Endpoint, status, proxy)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if out.More {
		fmt.Fprintf(stdout, "more: the next ones with --after %s\n", out.NextAfter)
	}
	return nil
}

// listPath is a list's path with the query parameters given a value.
func listPath(base string, params map[string]string) string {
	q := url.Values{}
	for name, v := range params {
		if v != "" {
			q.Set(name, v)
		}
	}
	if len(q) == 0 {
		return base
	}
	return base + "?" + q.Encode()
}

// pageSize is a --limit as the query gives it ("": the API's default).
func pageSize(limit int) string {
	if limit == 0 {
		return ""
	}
	return fmt.Sprint(limit)
}
