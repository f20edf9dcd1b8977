package milvus

import (
	"context"
	"fmt"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// keyRowsChunk bounds the keys of one read of KeyRows: its limit, twice
// its keys, stays within the rows a query may return.
const keyRowsChunk = QueryWindow / 2

// KeyRows reads the rows of keys (values of the key field pk) that
// collection coll holds in parts (nil: every partition), every field in
// fields, and hands them to each, one page at a time, each key's row
// once. It reads as of ts, or of a clock taken now if ts is 0.
//
// Milvus limits a query's rows before it merges those held under one key
// (a client that repeated an insert leaves two), and limits a query of
// keys without a limit to about as many rows as it names keys. So a query of n
// keys can come back without some of the keys the collection holds, and
// a reader that took them for gone deleted rows from the target. Where a
// page lacks keys, the rows under them are counted: if the page's limit
// could not have cut any, they are not held; otherwise they are asked for
// again, and each read either finds one or ends.
func (c *Conn) KeyRows(ctx context.Context, db, coll, pk string, keys Keys, fields, parts []string, ts uint64, each func(page []*schemapb.FieldData) error) error {
	keyType := "int64"
	if len(keys.Strs) > 0 {
		keyType = "varchar"
	}
	if ts == 0 {
		// Every read at one clock: the first waits for the server to reach
		// it, those after it are answered at once. A server that gives no
		// clock is read strongly each time.
		ts, _ = c.AllocTimestamp(ctx)
	}
	remaining := keys.Strings()
	for len(remaining) > 0 {
		n := min(len(remaining), keyRowsChunk)
		chunk := remaining[:n]
		remaining = remaining[n:]
		expr := KeysFromStrings(keyType, chunk).InExpr(pk)
		limit := int64(2 * len(chunk))
		page, err := c.QueryAt(ctx, db, coll, expr, fields, parts, limit, ts)
		if err != nil {
			return err
		}
		found := map[string]bool{}
		for _, k := range KeysOf(Column(page, pk)).Strings() {
			found[k] = true
		}
		if len(found) == 0 {
			continue // a page cut short still has a row: none is held
		}
		if err := each(page); err != nil {
			return err
		}
		if len(found) == len(chunk) {
			continue
		}
		held, err := c.CountIn(ctx, db, coll, expr, parts, ts)
		if err != nil {
			return fmt.Errorf("count the rows of keys read: %w", err)
		}
		if held <= limit {
			continue // the page was whole
		}
		for _, k := range chunk {
			if !found[k] {
				remaining = append(remaining, k)
			}
		}
	}
	return nil
}
