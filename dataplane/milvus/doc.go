// Package milvus is zdm's Milvus client: connections and the transport
// they share, administration (databases, collections, indexes, loads),
// the inventory of a cluster, columns and keys, key ranges, and the
// decoding of MilvusService requests. It talks to the MilvusService over
// raw gRPC (milvus-proto's milvuspb), so rows move between clusters as
// the server's own column data, bit for bit. Every other part of the data
// plane reaches Milvus through it.
package milvus
