// Package segcopy copies what a source cluster has already written, its
// sealed segments' binlogs, into the target's storage and has the target
// import them, so that the source's query nodes serve none of the copy.
package segcopy
