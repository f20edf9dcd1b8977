package integration_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/domain"
)

// Milvus imports what a stage holds and says it succeeded: a stage that
// lost a segment's logs (here removed from the target's storage between
// the staging and the import) would leave its rows off the target with no
// error. The copy stages such a partition again before its import; a
// stage that keeps losing them fails the copy import_failed, naming the
// segments.
func TestAStageThatLostSegmentsIsStagedAgainBeforeItsImport(t *testing.T) {
	bed := flushedOne(t, "impf_", 1000)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	const db, coll = "impf_db0", "impf_c0"
	c := rowcopy.NewCopier(storageEndpoints{bed}, rowcopy.Config{}, nil)
	// copy copies into a fresh target, removing the stage's insert logs
	// after the first `times` segments staged.
	copy := func(times int) (*domain.Migration, error) {
		milvustest.Reset(t, bed.Target)
		m := planned(t, c)
		var mu sync.Mutex
		into := recordInto(&mu, m)
		staged := filepath.Join(bed.DataDir("target"), "zdm-import", m.ID, "insert_log")
		removed := 0
		err := c.Copy(ctx, m, func(ctx context.Context, p domain.BulkCopyProgressed) error {
			if err := into(ctx, p); err != nil {
				return err
			}
			if strings.HasPrefix(p.Range, domain.SegmentStep+"/") && removed < times {
				removed++
				return os.RemoveAll(staged)
			}
			return nil
		})
		if removed < times && err == nil {
			t.Fatalf("the stage was removed %d times, want %d", removed, times)
		}
		return m, err
	}

	if _, err := copy(1); err != nil {
		t.Fatalf("a copy whose stage lost a segment once: %v", err)
	}
	if n, err := dst.CountWhere(ctx, db, coll, ""); err != nil || n != 1000 {
		t.Fatalf("the target holds %d rows (%v), want 1000", n, err)
	}
	sameThroughZdm(t, src, dst, "after a copy whose stage lost a segment once")

	_, err := copy(100)
	var se *domain.StepError
	if !errors.As(err, &se) || se.Reason != "import_failed" || !strings.Contains(err.Error(), "gone from the target's storage") {
		t.Fatalf("a copy whose stage keeps losing a segment: %v, want import_failed naming the segments", err)
	}
	t.Logf("a copy whose stage keeps losing a segment: %v", err)
}
