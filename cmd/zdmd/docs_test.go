package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// envAssignment is a shell variable set for one command ("ZDM_TOKEN=x").
var envAssignment = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)

// Every zdmd command line in the README's and the operator guide's shell
// blocks names a command that exists and only flags it takes: an operator
// who copies them meets no "flag provided but not defined".
func TestTheDocsCommandLinesAreOnesZdmdTakes(t *testing.T) {
	names := map[string]bool{}
	for _, c := range commands {
		names[c.name] = true
	}
	checked := 0
	for _, doc := range []string{"README.md", filepath.Join("docs", "operator-guide.md")} {
		data, err := os.ReadFile(filepath.Join("..", "..", doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range shellLines(string(data)) {
			fields := strings.Fields(line)
			for len(fields) > 0 && envAssignment.MatchString(fields[0]) {
				fields = fields[1:]
			}
			if len(fields) == 0 || (fields[0] != "zdmd" && fields[0] != "bin/zdmd") {
				continue
			}
			args := fields[1:]
			name := ""
			for i := min(2, len(args)); i > 0; i-- {
				if n := strings.Join(args[:i], " "); names[n] {
					name = n
					break
				}
			}
			if name == "" {
				t.Errorf("%s: %q names no zdmd command", doc, line)
				continue
			}
			usage := usageText(t, name)
			for _, a := range args {
				if !strings.HasPrefix(a, "-") || a == "-" {
					continue
				}
				flag, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
				if !strings.Contains(usage, "  --"+flag+" ") && !strings.Contains(usage, "  --"+flag+"\n") {
					t.Errorf("%s: %q gives --%s, which zdmd %s does not take", doc, line, flag, name)
				}
			}
			checked++
		}
	}
	if checked < 15 {
		t.Fatalf("only %d zdmd command lines found in the docs", checked)
	}
}

// usageText is what "zdmd NAME -h" prints, to standard output.
func usageText(t *testing.T, name string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(append(strings.Fields(name), "-h"), &stdout, &stderr); code != 0 || stderr.Len() > 0 {
		t.Fatalf("zdmd %s -h: exit %d, %s", name, code, stderr.String())
	}
	return stdout.String()
}

// shellLines are the lines of a markdown text's fenced code blocks, a
// line continued with a backslash joined to the next, comments cut.
func shellLines(md string) []string {
	var out []string
	in, cont := false, ""
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in, cont = !in, ""
			continue
		}
		if !in {
			continue
		}
		line = cont + strings.TrimSpace(line)
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`) + " "
			continue
		}
		cont = ""
		out = append(out, strings.TrimRight(line, " &"))
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}
