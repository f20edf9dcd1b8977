package domain

import (
	"errors"
	"fmt"
	"net"
)

// ErrListenTaken is a proxy_listen another cluster's proxy has: every zdmd
// serves each cluster's proxy on its proxy_listen, and of two clusters on
// one address only one can listen. Which one would be a matter of timing,
// and could change at a restart: applications would write to another
// cluster than the one they were told.
var ErrListenTaken = errors.New("proxy_listen is another cluster's")

// ListenTakenError names the cluster whose proxy has the address (Holder
// "" when it is of an organization the caller may not see).
type ListenTakenError struct {
	Listen string
	Holder string
}

func (e *ListenTakenError) Error() string {
	by := "a cluster of another organization"
	if e.Holder != "" {
		by = "cluster " + e.Holder
	}
	return fmt.Sprintf("proxy_listen %s is the proxy address of %s: give each cluster a port of its own", e.Listen, by)
}

// Unwrap returns ErrListenTaken.
func (e *ListenTakenError) Unwrap() error { return ErrListenTaken }

// SameListen reports whether two proxy_listen addresses would contend for
// one socket: the same port, on the same address or on one that covers
// the other (every address: 0.0.0.0, ::), or on a host name, which may
// stand for the other address.
func SameListen(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb {
		return false
	}
	ia, ib := net.ParseIP(ha), net.ParseIP(hb)
	if ia == nil || ib == nil {
		return true
	}
	return ia.Equal(ib) || ia.IsUnspecified() || ib.IsUnspecified()
}
