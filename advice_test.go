package zdm_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/zdm-io/zdm"
)

// reasonInCode finds the failure reasons the code records: a step's
// error, a migration failed by the data plane, a step's default reason,
// a named constant.
var reasonInCode = regexp.MustCompile(`(?:Reason: *|FailMigration\([^"\n]*|State\w+: *|Reason\w* *= *)"([a-z]+(?:_[a-z]+)+)"`)

// Every failure reason zdm can record has a row in the operator guide's
// table, which zdmd migration show quotes: what happened, what to do.
func TestEveryFailureReasonHasTheGuidesAdvice(t *testing.T) {
	advice := zdm.FailureAdvice()
	found := 0
	for _, files := range goFiles(t) {
		for path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range reasonInCode.FindAllStringSubmatch(string(data), -1) {
				found++
				if a, ok := advice[m[1]]; !ok || a[0] == "" || a[1] == "" {
					t.Errorf("%s records failure reason %s, which the operator guide's table does not explain", path, m[1])
				}
			}
		}
	}
	if found < 15 {
		t.Fatalf("found %d failure reasons in the code: the search is broken", found)
	}
	if got := advice["switch_check_failed"][1]; !strings.HasPrefix(got, "look for the named keys' writes: ") {
		t.Errorf("switch_check_failed: what to do = %q", got)
	}
}
