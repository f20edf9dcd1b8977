package zdm_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strings"
	"testing"
)

// ruleNumber is how the specification numbers its rules (R1-R13): a
// name for the people who build zdm, which means nothing to an operator
// or to an application reading an error.
var ruleNumber = regexp.MustCompile(`\bR(1[0-3]|[1-9])\b`)

// Every message zdm shows (its strings, the API's description, the
// operator's documents) says what a rule means, never its number.
func TestNoMessageNamesARuleByItsNumber(t *testing.T) {
	fset := token.NewFileSet()
	for _, files := range goFiles(t) {
		for path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && ruleNumber.MatchString(lit.Value) {
					t.Errorf("%s: a message names a rule by its number: %s", fset.Position(lit.Pos()), lit.Value)
				}
				return true
			})
		}
	}
	for _, doc := range []string{"README.md", "docs/operator-guide.md", "api/openapi.yaml"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			if ruleNumber.MatchString(line) {
				t.Errorf("%s:%d names a rule by its number: %s", doc, i+1, line)
			}
		}
	}
}
