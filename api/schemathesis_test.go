package api_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// The API holds to its document under an outside fuzzer: schemathesis
// (ZDM_SCHEMATHESIS, its st program; scripts/test.sh installs it) sends
// what api/openapi.yaml allows and what it does not, as an organization
// admin, to a zdmd with a cluster and a migration to reach. No answer may
// be a server error, one the document does not list, one that breaks its
// schema, or an acceptance of what the document refuses. Its seed is fixed,
// so a run is repeated exactly. Refusing what the document allows
// (positive_data_acceptance) is left out: some refusals no schema can say
// (a cluster ID that names no cluster, a key sent again with another body).
func TestTheAPIHoldsToItsDocumentUnderAFuzzer(t *testing.T) {
	bin := os.Getenv("ZDM_SCHEMATHESIS")
	if bin == "" {
		milvustest.Missing(t, "ZDM_SCHEMATHESIS is not set: scripts/test.sh installs schemathesis and sets it to its st program")
	}
	s := st.Start(t, st.Config(t.TempDir()))
	mid := startMigration(t, s, st.OrgAdminToken, registerCluster(t, s, "fuzzed")).JSON(t)["id"].(string)
	dir := t.TempDir()
	// The migration routes are sent the migration's ID, or they would only
	// ever meet 404.
	config := fmt.Sprintf("[[operations]]\ninclude-path-regex = \"^/v1/migrations/\"\nparameters = { \"path.id\" = %q }\n", mid)
	if err := os.WriteFile(filepath.Join(dir, "schemathesis.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", s.URL+"/v1/openapi.yaml", "--url", s.URL,
		"-H", "Authorization: Bearer "+st.OrgAdminToken,
		"--checks", "all", "--exclude-checks", "positive_data_acceptance",
		"--max-examples", "40", "--seed", "20261206", "--generation-database", "none",
		"--workers", "1", "--no-color")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("schemathesis found the API and its document apart (%v):\n%s", err, out)
	}
	if !strings.Contains(string(out), "passed") {
		t.Fatalf("schemathesis ran no test case:\n%s", out)
	}
}
