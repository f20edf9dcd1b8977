// Package restgate carries Milvus's RESTful API (v1, the /v1/vector calls
// Milvus 2.3 and 2.4 serve on their gRPC port) through zdm's proxy. Each
// REST call becomes the gRPC calls Milvus's own REST handler would make,
// sent to the proxy's endpoint like an SDK's: its writes are captured,
// held during a switch and routed as the endpoint routes, and its answer
// is shaped as Milvus shapes it (HTTP 200, a JSON code and data or
// message; 64-bit integers as text).
package restgate
