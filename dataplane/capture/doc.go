// Package capture is the proxy in front of a migrating cluster and what
// it records: every write the cluster acknowledges is journaled before its
// client gets the answer (Capture.Forward), writes of the same keys keep
// the order the cluster applied them, an intent kept before each write
// lets a crash be repaired, and the switch holds writes and routes them
// to the target. The journal's entries and subjects are defined here; the
// sync reads them.
package capture
