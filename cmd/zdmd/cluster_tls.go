package main

import (
	"flag"
	"os"
)

// tlsFlags adds the flags of a cluster's TLS and of its proxy's listener;
// the function it returns adds to a request's body the settings given on
// the command line, the certificates and keys read from their files.
func tlsFlags(fs *flag.FlagSet) func(body map[string]any) error {
	mode := fs.String("tls", "", `reach the cluster over TLS: "one_way", "mutual" or "none" (default: one_way with --tls-ca, mutual with --tls-cert)`)
	ca := fs.String("tls-ca", "", "PEM file of the CA that signed the cluster's certificate (default: this host's roots)")
	serverName := fs.String("tls-server-name", "", "the name the cluster's certificate carries, if not its address's host")
	cert := fs.String("tls-cert", "", "PEM file of the client certificate zdm presents (mutual TLS)")
	key := fs.String("tls-key", "", "PEM file of its private key")
	proxyMode := fs.String("proxy-tls", "", `the proxy listens over TLS: "one_way", "mutual" or "none" (default: mutual with --proxy-tls-client-ca, one_way otherwise)`)
	proxyCert := fs.String("proxy-tls-cert", "", "PEM file of the proxy's certificate (applications keep trusting theirs: use the cluster's own)")
	proxyKey := fs.String("proxy-tls-key", "", "PEM file of its private key")
	clientCA := fs.String("proxy-tls-client-ca", "", "PEM file of the CA whose client certificates the proxy asks for (mutual TLS)")
	return func(body map[string]any) error {
		given := flagsGiven(fs)
		client, err := tlsSection(given, "tls", *mode, *cert != "",
			pemFlag{"ca_pem", "tls-ca", ca}, pemFlag{"client_cert_pem", "tls-cert", cert}, pemFlag{"client_key_pem", "tls-key", key})
		if err != nil {
			return err
		}
		if client != nil {
			if given["tls-server-name"] {
				client["server_name"] = *serverName
			}
			body["tls"] = client
		}
		server, err := tlsSection(given, "proxy-tls", *proxyMode, *clientCA != "",
			pemFlag{"cert_pem", "proxy-tls-cert", proxyCert}, pemFlag{"key_pem", "proxy-tls-key", proxyKey},
			pemFlag{"client_ca_pem", "proxy-tls-client-ca", clientCA})
		if server != nil {
			body["proxy_tls"] = server
		}
		return err
	}
}

// tlsSection is the request's TLS object of the flags named prefix and
// prefix-*, nil when none is given: its mode (one_way, or mutual when
// mutual holds, unless the prefix flag names one) and each field read from
// the file its flag names.
func tlsSection(given map[string]bool, prefix, mode string, mutual bool, fields ...pemFlag) (map[string]any, error) {
	some := given[prefix] || given[prefix+"-server-name"]
	for _, f := range fields {
		some = some || given[f.flag]
	}
	if !some {
		return nil, nil
	}
	if mode == "" {
		mode = "one_way"
		if mutual {
			mode = "mutual"
		}
	}
	out := map[string]any{"mode": mode}
	for _, f := range fields {
		if *f.path == "" {
			continue
		}
		text, err := readPEM(f.flag, *f.path)
		if err != nil {
			return nil, err
		}
		out[f.field] = text
	}
	return out, nil
}

// pemFlag is a request field read from the file a flag names.
type pemFlag struct {
	field, flag string
	path        *string
}

// readPEM is the content of the PEM file a flag names; a file it cannot
// read is told by the flag.
func readPEM(flag, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usageError("--%s: %v", flag, err)
	}
	return string(b), nil
}
