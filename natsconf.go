// Package zdm holds files that ship inside the zdmd binary.
package zdm

import _ "embed"

// NATSConfig is nats.conf, the embedded JetStream server's configuration.
//
//go:embed nats.conf
var NATSConfig string

// NATSClusterConfig is nats-cluster.conf, one node of a three-node
// JetStream cluster, configured by its environment.
//
//go:embed nats-cluster.conf
var NATSClusterConfig string

// NATSClusterTLSConfig is nats-cluster-tls.conf: nats-cluster.conf with
// TLS on the client port and the routes, certificates verified both ways.
//
//go:embed nats-cluster-tls.conf
var NATSClusterTLSConfig string
