package api_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// routeCell is the first cell of a row of the README's route table.
var routeCell = regexp.MustCompile("^\\| `([^|]*)` \\|")

// The README's route table names every route the server serves, with
// its methods: an operator reading it finds each one.
func TestTheREADMEListsEveryRoute(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		m := routeCell.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var methods []string
		for _, piece := range strings.Split(strings.ReplaceAll(m[1], "`", ""), ",") {
			fields := strings.Fields(piece)
			if len(fields) == 2 {
				methods = strings.Split(fields[0], "/")
				fields = fields[1:]
			}
			if len(fields) != 1 {
				continue
			}
			path, _, _ := strings.Cut(fields[0], "?")
			for _, method := range methods {
				listed[method+" "+path] = true
			}
		}
	}
	s := st.Start(t, st.Config(t.TempDir()))
	n := 0
	for _, rt := range s.Routes() {
		method, path, _ := strings.Cut(rt, " ")
		// The console's files are its page's, listed as GET /.
		if strings.Contains(path, "*") || strings.HasSuffix(path, ".js") || strings.HasSuffix(path, ".css") || strings.HasSuffix(path, ".html") || method == "HEAD" {
			continue
		}
		n++
		if !listed[method+" "+strings.ReplaceAll(path, ":id", "{id}")] {
			t.Errorf("the README's route table does not list %s", rt)
		}
	}
	if n < 15 {
		t.Fatalf("only %d routes checked: %v", n, s.Routes())
	}
}
