package milvus

import (
	"context"
	"fmt"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// Milvus counts every row of a key held twice (an insert a client
// repeated) against a query's limit and returns the key once. A page of
// keys in order can then come back short of its limit with rows after
// it, and a reader that took a short page for the last one stopped early:
// the copy of a source holding keys twice lost every row after the first
// such page. An empty page would end a read safely, but a read of the
// open end of a collection chases the writes that append to it and may
// never see one. So a short page is counted: it is the last one when the
// rows it spans are fewer than the limit.

// LastPage reports whether a page of a query for keys after `after` (nil:
// from the first key) in partitions parts, limited to limit rows and read
// at ts, is the last one: it came back with n rows, the last of them
// under key last.
func (c *Conn) LastPage(ctx context.Context, db, coll string, pk *schemapb.FieldSchema, parts []string, after *string, last string, n int, limit int64, ts uint64) (bool, error) {
	switch {
	case n == 0:
		return true, nil
	case int64(n) >= limit:
		return false, nil
	}
	rows, err := c.CountIn(ctx, db, coll, KeyRange{Gt: after, Le: &last}.Expr(pk, nil), parts, ts)
	if err != nil {
		return false, fmt.Errorf("count the rows of a page: %w", err)
	}
	return rows < limit, nil
}
