package main

import (
	"flag"

	"github.com/zdm-io/zdm/service"
)

// natsTLSFlags adds the flags that secure the connections to an external
// NATS; the returned func writes those given over t.
func natsTLSFlags(fs *flag.FlagSet) func(t *service.NATSTLS) {
	ca := fs.String("nats-tls-ca", "", "PEM file of the CA that --nats-url's servers' certificates chain to")
	cert := fs.String("nats-tls-cert", "", "PEM certificate this zdmd presents to NATS servers that verify clients (with --nats-tls-key)")
	key := fs.String("nats-tls-key", "", "PEM key of --nats-tls-cert")
	return func(t *service.NATSTLS) {
		for _, o := range []struct{ flag, dst *string }{{ca, &t.CAFile}, {cert, &t.CertFile}, {key, &t.KeyFile}} {
			if *o.flag != "" {
				*o.dst = *o.flag
			}
		}
	}
}
