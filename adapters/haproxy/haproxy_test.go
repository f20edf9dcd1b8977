package haproxy_test

import (
	"os"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/adapters/haproxy"
)

// The operator guide shows the configuration the tests run.
func TestTheOperatorGuideShowsTheConfigurationTheTestsRun(t *testing.T) {
	guide, err := os.ReadFile("../../docs/operator-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "# /etc/haproxy/haproxy.cfg (HAProxy 2.6, Debian's package)\n"
	_, block, ok := strings.Cut(string(guide), marker)
	if !ok {
		t.Fatal("the operator guide shows no haproxy.cfg")
	}
	block, _, _ = strings.Cut(block, "```")
	want := haproxy.Config(":19530", []string{"zdmd-1:19540", "zdmd-2:19540", "zdmd-3:19540"})
	if block != want {
		t.Fatalf("the guide shows\n%s\nthe tests run\n%s", block, want)
	}
}
