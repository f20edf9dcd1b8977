// Package verify compares a source and a target: structure, counts,
// row checksums and sampled vectors in full (after the copy, and on
// demand with zdmd verify), and the quick check made while writes are
// held at the switch.
package verify
