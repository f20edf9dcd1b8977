package zdm

import (
	_ "embed"
	"strings"
)

// operatorGuide is docs/operator-guide.md: what zdmd tells an operator to
// do about a failure is what the guide says, word for word.
//
//go:embed docs/operator-guide.md
var operatorGuide string

// FailureAdvice returns, by failure reason, what happened and what to do,
// from the operator guide's table of failure reasons.
func FailureAdvice() map[string][2]string {
	out := map[string][2]string{}
	_, table, ok := strings.Cut(operatorGuide, "| reason | what happened | what to do |")
	if !ok {
		return out
	}
	for _, line := range strings.Split(table, "\n")[2:] {
		cells := strings.Split(strings.TrimSpace(line), " | ")
		if len(cells) != 3 || !strings.HasPrefix(cells[0], "| `") {
			break
		}
		// A row may name several reasons ("`a`, `b`"), or one with a
		// detail ("`a` with ..."): the first row of a reason is its own.
		for _, name := range strings.Split(strings.TrimPrefix(cells[0], "| "), ", ") {
			reason, plain := strings.CutPrefix(name, "`")
			reason, plain2 := strings.CutSuffix(reason, "`")
			if _, seen := out[reason]; plain && plain2 && !seen && !strings.ContainsAny(reason, "` ") {
				out[reason] = [2]string{cells[1], strings.TrimSuffix(cells[2], " |")}
			}
		}
	}
	return out
}
