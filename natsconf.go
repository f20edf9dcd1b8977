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
