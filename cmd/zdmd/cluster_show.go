package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printCluster shows a registered cluster as an operator reads it: where
// zdm reaches it and how, where applications reach its proxy, what zdm
// may read of its storage, and what holds it.
func printCluster(w io.Writer, cl clusterJSON) error {
	fmt.Fprintf(w, "cluster %s  %s (%s/%s)  %s\n", cl.ID, cl.Name, cl.Organization, cl.Project, cl.Status)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	endpoint := cl.Endpoint
	if cl.TLS != "" {
		endpoint += " (TLS " + strings.ReplaceAll(cl.TLS, "_", "-") + ")"
	}
	fmt.Fprintf(tw, "endpoint\t%s\n", endpoint)
	creds := "none"
	if cl.HasCredentials {
		creds = "a user and password, sealed (never shown)"
	}
	fmt.Fprintf(tw, "credentials\t%s\n", creds)
	switch {
	case cl.ProxyListen == "":
		fmt.Fprintf(tw, "proxy\tnone (cluster update --proxy-listen gives it one)\n")
	default:
		proxy := cl.ProxyListen
		if cl.ProxyTLS != "" {
			proxy += " (TLS " + strings.ReplaceAll(cl.ProxyTLS, "_", "-") + ")"
		}
		fmt.Fprintf(tw, "proxy\t%s\n", proxy)
		if cl.ProxyProblem != "" {
			fmt.Fprintf(tw, "\tnot serving on the zdmd that answered: %s\n", cl.ProxyProblem)
		}
	}
	switch {
	case cl.StorageS3 != nil:
		s3 := cl.StorageS3
		scheme := "http"
		if s3.UseSSL {
			scheme = "https"
		}
		where := fmt.Sprintf("S3 bucket %s at %s://%s", s3.Bucket, scheme, s3.Endpoint)
		if s3.RootPath != "" {
			where += ", root path " + s3.RootPath
		}
		if s3.Region != "" {
			where += ", region " + s3.Region
		}
		fmt.Fprintf(tw, "storage\t%s\n", where)
	case cl.StoragePath != "":
		fmt.Fprintf(tw, "storage\t%s (local)\n", cl.StoragePath)
	default:
		fmt.Fprintf(tw, "storage\tnone given: a migration from or to it copies rows\n")
	}
	if cl.Spare {
		fmt.Fprintf(tw, "spare\tyes: the pool provisioner may take it as a migration's target\n")
	}
	if cl.Provisioner != "" {
		fmt.Fprintf(tw, "provisioned by\t%s\n", cl.Provisioner)
	}
	if cl.MigrationID != "" {
		fmt.Fprintf(tw, "migration\t%s (zdmd migration show %s)\n", cl.MigrationID, cl.MigrationID)
	}
	fmt.Fprintf(tw, "registered\t%s, changed %s\n", cl.CreatedAt.UTC().Format("2006-01-02 15:04 MST"), cl.UpdatedAt.UTC().Format("2006-01-02 15:04 MST"))
	return tw.Flush()
}
