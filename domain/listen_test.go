package domain

import "testing"

func TestTwoProxyAddressesContendWhenOneSocketCouldServeBoth(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"127.0.0.1:19540", "127.0.0.1:19540", true},
		{"127.0.0.1:19540", "127.0.0.1:19541", false},
		{"0.0.0.0:19540", "10.0.0.5:19540", true},
		{"[::]:19540", "127.0.0.1:19540", true},
		{"10.0.0.5:19540", "10.0.0.6:19540", false},
		{"[::1]:19540", "[0:0:0:0:0:0:0:1]:19540", true},
		{"localhost:19540", "127.0.0.1:19540", true},
		{"proxy.internal:19540", "other.internal:19540", true},
		{"proxy.internal:19540", "proxy.internal:19541", false},
		{"not an address", "127.0.0.1:19540", false},
	} {
		if got := SameListen(c.a, c.b); got != c.same {
			t.Errorf("SameListen(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
		}
		if got := SameListen(c.b, c.a); got != c.same {
			t.Errorf("SameListen(%q, %q) = %v, want %v", c.b, c.a, got, c.same)
		}
	}
}
