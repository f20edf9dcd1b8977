// Package provision yields a new, empty target for a migration: the local
// provisioner starts a Milvus server on this host, the pool provisioner
// claims an empty spare from the registry.
package provision
