// Package datatools is what zdmd seed, load and check do: fill a cluster
// with a shape of data, write at a rate and mix while journaling every
// acknowledged write, and prove that every such write is on a cluster
// once, with its last value.
package datatools
