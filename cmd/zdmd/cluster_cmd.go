package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/zdm-io/zdm/projections"
)

// clusterJSON is a cluster as the API answers it.
type clusterJSON struct {
	projections.ClusterView
	// ProxyProblem is why its proxy does not serve on the zdmd that answered.
	ProxyProblem string `json:"proxy_problem"`
}

func clusterCmd(args []string, stdout io.Writer) error {
	return group("cluster", args, stdout, func(sub string, args []string) (bool, error) {
		switch sub {
		case "list", "show", "delete", "register", "update":
			return true, clusterSub(sub, args, stdout)
		}
		return false, nil
	})
}

func clusterSub(sub string, args []string, stdout io.Writer) error {
	fs := newFlags("cluster " + sub)
	newClient := clientFlags(fs)
	switch sub {
	case "list":
		return clusterList(fs, newClient, args, stdout)
	case "show":
		asJSON := fs.Bool("json", false, "print the API's answer as it is")
		var raw json.RawMessage
		if err := callWith(fs, newClient, args, 1, "cluster ID", "GET", func(ids []string) string { return "/v1/clusters/" + url.PathEscape(ids[0]) }, &raw); err != nil {
			return err
		}
		var cl clusterJSON
		if decoded, err := decodeOrPrint(raw, *asJSON, &cl, stdout, "the cluster"); !decoded {
			return err
		}
		return printCluster(stdout, cl)
	case "delete":
		if err := callWith(fs, newClient, args, 1, "cluster ID", "DELETE", func(ids []string) string { return "/v1/clusters/" + url.PathEscape(ids[0]) }, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s deleted\n", fs.Arg(0))
		return nil
	case "register":
		name := fs.String("name", "", "cluster name (required)")
		org := fs.String("organization", "", "organization (required)")
		project := fs.String("project", "", "project (required)")
		settings := clusterFlags(fs, "Milvus address host:port (required)")
		security := tlsFlags(fs)
		if err := parseNoArgs(fs, args); err != nil {
			return err
		}
		c, err := newClient()
		if err != nil {
			return err
		}
		body := settings(true)
		if err := security(body); err != nil {
			return err
		}
		body["name"], body["organization"], body["project"] = *name, *org, *project
		body["password"] = os.Getenv("ZDM_CLUSTER_PASSWORD")
		var out clusterJSON
		if err := c.do("POST", "/v1/clusters", body, &out); err != nil {
			return fieldFlag(err)
		}
		fmt.Fprintln(stdout, out.ID)
		return nil
	case "update":
		password := fs.Bool("password", false, "set the password to the value of ZDM_CLUSTER_PASSWORD")
		settings := clusterFlags(fs, "Milvus address host:port")
		security := tlsFlags(fs)
		id, c, err := idAndClient(fs, newClient, args, "cluster ID")
		if err != nil {
			return err
		}
		body := settings(false)
		if err := security(body); err != nil {
			return err
		}
		if *password {
			body["password"] = os.Getenv("ZDM_CLUSTER_PASSWORD")
		}
		if len(body) == 0 {
			return usageError("cluster update: give at least one setting to change (see zdmd cluster update -h)")
		}
		var out clusterJSON
		if err := c.do("PATCH", "/v1/clusters/"+url.PathEscape(id), body, &out); err != nil {
			return fieldFlag(err)
		}
		fmt.Fprintf(stdout, "%s updated (status %s)\n", out.ID, out.Status)
		return nil
	}
	return nil
}

// clusterFlags adds the flags of a cluster's settings; the function it
// returns gives the request's body: every setting (all), or only those
// given on the command line (an update).
func clusterFlags(fs *flag.FlagSet, endpointHelp string) func(all bool) map[string]any {
	endpoint := fs.String("endpoint", "", endpointHelp)
	user := fs.String("username", "", "Milvus user (its password from ZDM_CLUSTER_PASSWORD)")
	spare := fs.Bool("spare", false, "offer the cluster to the pool provisioner as a target")
	proxy := fs.String("proxy-listen", "", "run the zdm Milvus proxy for this cluster on host:port (\"\" for none)")
	storage := fs.String("storage-path", "", "the cluster's local storage (Milvus localStorage.path) as this host reaches it, for the segment copy")
	s3 := fs.String("storage-s3-endpoint", "", "the cluster's S3-compatible storage, host:port (Milvus minio.address and port), for the segment copy; keys from ZDM_STORAGE_ACCESS_KEY and ZDM_STORAGE_SECRET_KEY")
	bucket := fs.String("storage-s3-bucket", "", "its bucket (Milvus minio.bucketName)")
	root := fs.String("storage-s3-root-path", "files", "its root path (Milvus minio.rootPath)")
	region := fs.String("storage-s3-region", "", "its region (Milvus minio.region)")
	ssl := fs.Bool("storage-s3-ssl", false, "reach it over TLS (Milvus minio.useSSL)")
	return func(all bool) map[string]any {
		given := flagsGiven(fs)
		body := map[string]any{}
		for name, v := range map[string]any{"endpoint": *endpoint, "username": *user, "spare": *spare, "proxy-listen": *proxy, "storage-path": *storage} {
			if all || given[name] {
				body[strings.ReplaceAll(name, "-", "_")] = v
			}
		}
		others := false // an S3 flag other than the endpoint
		for name := range given {
			others = others || strings.HasPrefix(name, "storage-s3-") && name != "storage-s3-endpoint"
		}
		switch {
		case !all && given["storage-s3-endpoint"] && *s3 == "" && !others:
			// An update's empty endpoint removes the S3 storage, as an
			// empty --storage-path removes the local one.
			body["storage_s3"] = map[string]any{}
		// Any S3 flag sends the whole setting, so a bucket given without
		// its endpoint is refused by name rather than dropped.
		case *s3 != "" || given["storage-s3-endpoint"] || others:
			body["storage_s3"] = map[string]any{"endpoint": *s3, "bucket": *bucket, "root_path": *root, "region": *region, "use_ssl": *ssl,
				"access_key": os.Getenv("ZDM_STORAGE_ACCESS_KEY"), "secret_key": os.Getenv("ZDM_STORAGE_SECRET_KEY")}
		}
		return body
	}
}

// fieldFlag names the flag of the field an API error names.
func fieldFlag(err error) error {
	if ae, ok := err.(*apiError); ok && ae.Field != "" {
		// The API's message starts with the field, which the flag names.
		return fmt.Errorf("--%s: %s", flagOfField(ae.Field), strings.TrimPrefix(ae.Message, ae.Field+" "))
	}
	return err
}

func flagOfField(field string) string {
	switch field {
	case "proxy_listen":
		return "proxy-listen"
	case "storage_path":
		return "storage-path"
	case "password":
		return "username (password from ZDM_CLUSTER_PASSWORD)"
	case "storage_s3", "storage_s3.endpoint":
		return "storage-s3-endpoint"
	case "storage_s3.bucket", "storage_s3.root_path", "storage_s3.region":
		return "storage-s3-" + strings.ReplaceAll(strings.TrimPrefix(field, "storage_s3."), "_", "-")
	case "tls", "tls.mode", "proxy_tls", "proxy_tls.mode":
		return strings.ReplaceAll(strings.TrimSuffix(field, ".mode"), "_", "-")
	case "tls.ca_pem", "tls.client_cert_pem", "tls.client_key_pem", "tls.server_name":
		return "tls-" + strings.NewReplacer("client_", "", "_pem", "", "_", "-").Replace(strings.TrimPrefix(field, "tls."))
	case "proxy_tls.cert_pem", "proxy_tls.key_pem", "proxy_tls.client_ca_pem":
		return "proxy-tls-" + strings.NewReplacer("_pem", "", "_", "-").Replace(strings.TrimPrefix(field, "proxy_tls."))
	case "storage_s3.secret_key":
		return "storage-s3-endpoint (keys from ZDM_STORAGE_ACCESS_KEY and ZDM_STORAGE_SECRET_KEY)"
	}
	return field
}
