package rowcopy

import (
	"context"
	"fmt"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/segcopy"
)

// probeCollections bounds the collections the preflight asks for a
// flushed segment to look for on the source's storage.
const probeCollections = 20

// sourceStorageProbe says why the source's storage, as registered, cannot
// serve a segment copy ("" when it can, or when nothing shows otherwise).
// It must be the storage the source's Milvus writes to: a wrong path,
// bucket or root path would only show in the copy, as every segment
// vanishing, and fail it segment_gone with a reason that misleads. So
// the first flushed segment of the first collections that have one is
// looked for where the source would have written it.
func sourceStorageProbe(ctx context.Context, src *milvus.Conn, cols []*milvus.Collection) (string, error) {
	st, err := storageOf(src)
	if err != nil {
		return fmt.Sprintf("the source's storage cannot be reached (%v)", err), nil
	}
	for i, col := range cols {
		if i == probeCollections {
			break
		}
		segs, err := src.FlushedSegments(ctx, col.Database, col.Name)
		if err != nil {
			return "", err
		}
		for _, seg := range segs {
			if seg.Rows == 0 {
				continue
			}
			ids, err := src.CollectionIDs(ctx, col.Database, col.Name)
			if err != nil {
				return "", err
			}
			held, err := segcopy.HoldsSegment(ctx, st, ids.Collection, seg.PartitionID, seg.ID)
			switch {
			case err != nil:
				return fmt.Sprintf("the source's storage (%s) cannot be read: %v", storageWords(src), err), nil
			case !held:
				return fmt.Sprintf("the source's storage (%s) holds no logs of segment %d of %s, which the source lists as flushed: "+
					"register the storage its Milvus writes to (localStorage.path, or the bucket and rootPath of its minio settings)",
					storageWords(src), seg.ID, col.Key()), nil
			}
			return "", nil
		}
	}
	return "", nil
}

// storageWords names a cluster's registered storage for an operator.
func storageWords(c *milvus.Conn) string {
	if st, _, _ := c.StorageS3(); st != nil {
		return fmt.Sprintf("bucket %s, root path %q, at %s", st.Bucket, st.RootPath, st.Endpoint)
	}
	return "storage_path " + c.StoragePath()
}
