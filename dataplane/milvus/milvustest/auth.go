package milvustest

import "testing"

// RootPassword is the password of root on a server started WithAuth.
const RootPassword = "Milvus"

// WithAuth starts a Milvus server of the test's own, named name, on the
// 12 ports from basePort, that makes users sign in (root, RootPassword)
// and does for each only what its roles are granted. It returns its
// endpoint, and is stopped, its data removed, when the test ends.
func (b Bed) WithAuth(t testing.TB, name string, basePort int) string {
	t.Helper()
	return b.startOwn(t, name, basePort, "--auth")
}
