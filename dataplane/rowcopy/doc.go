// Package rowcopy is the bulk copy of rows: it plans each collection's key
// ranges at one source timestamp, creates the collections on the target,
// and copies the ranges with bounded memory and parallelism, one
// checkpoint per range, so a restarted zdmd never copies a range twice.
package rowcopy
