package segcopy_test

import (
	"path/filepath"
	"testing"

	"github.com/zdm-io/zdm/dataplane/segcopy"
	"github.com/zdm-io/zdm/dataplane/segcopy/segcopytest"
)

func TestLocalStorageListsPutsAndRemovesByKey(t *testing.T) {
	l := segcopy.Local{Root: t.TempDir()}
	segcopytest.Contract(t, l, filepath.Join(l.Root, "delta_log", "1", "2", "3", "9"))
}
