// Package integration holds the data plane's tests on the real test bed
// that span its parts: the capture, the row copy, the sync and
// verification working together, with servers and NATS killed under them.
package integration
