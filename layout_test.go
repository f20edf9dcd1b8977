package zdm_test

import (
	"bytes"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/zdm-io/zdm/"

// goFiles returns the project's Go files by package directory, and their
// line counts.
func goFiles(t *testing.T) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testout" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		if out[dir] == nil {
			out[dir] = map[string]int{}
		}
		out[dir][path] = bytes.Count(data, []byte("\n"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The layout stays one a newcomer can hold in their head: no file over
// 400 lines, no data-plane package over a fifth of the project's non-test
// lines, imports between the data plane's packages one way, and none of
// them on handlers.
func TestTheLayoutKeepsItsRooms(t *testing.T) {
	files := goFiles(t)
	total, perPkg := 0, map[string]int{}
	for dir, byPath := range files {
		for path, n := range byPath {
			if n > 400 {
				t.Errorf("%s has %d lines (at most 400)", path, n)
			}
			if !strings.HasSuffix(path, "_test.go") {
				total += n
				perPkg[dir] += n
			}
		}
	}
	// What each data-plane package may import of the others.
	allowed := map[string][]string{
		"dataplane/milvus":    nil,
		"dataplane/capture":   {"dataplane/milvus"},
		"dataplane/rowcopy":   {"dataplane/milvus", "dataplane/segcopy"},
		"dataplane/segcopy":   {"dataplane/milvus"},
		"dataplane/verify":    {"dataplane/milvus"},
		"dataplane/provision": {"dataplane/milvus"},
		"dataplane/livesync":  {"dataplane/milvus", "dataplane/capture", "dataplane/verify"},
		"dataplane/simulated": nil,
		"dataplane/restgate":  {"dataplane/milvus"},
	}
	for pkg, may := range allowed {
		n := perPkg[filepath.FromSlash(pkg)]
		t.Logf("%-20s %5d of %d non-test lines (%.1f %%)", pkg, n, total, 100*float64(n)/float64(total))
		if n == 0 {
			t.Errorf("%s has no code: the layout moved without this test", pkg)
		}
		if 5*n > total {
			t.Errorf("%s holds %d of %d non-test lines, more than a fifth", pkg, n, total)
		}
		for path := range files[filepath.FromSlash(pkg)] {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				ours, found := strings.CutPrefix(p, module)
				if !found {
					continue
				}
				if ours == "handlers" || strings.HasPrefix(ours, "dataplane/") && !slices.Contains(may, ours) {
					t.Errorf("%s imports %s; %s may import only domain, retry and %v", path, ours, pkg, may)
				}
			}
		}
	}
}
