package milvus

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// KeyRange is one unit of the copy: the rows of a partition whose primary
// key k has Gt < k <= Le (a missing bound is open).
type KeyRange struct {
	Partition string  `json:"p"`
	Index     int     `json:"i"`
	Gt        *string `json:"gt,omitempty"`
	Le        *string `json:"le,omitempty"`
}

// Name is the range as checkpoints record it.
func (r KeyRange) Name() string {
	data, _ := json.Marshal(r)
	return string(data)
}

// ParseRange reads a range name.
func ParseRange(name string) (KeyRange, error) {
	var r KeyRange
	if err := json.Unmarshal([]byte(name), &r); err != nil {
		return r, fmt.Errorf("range %q: %w", name, err)
	}
	return r, nil
}

// literal writes a key as an expression literal of the key's type.
func literal(pk *schemapb.FieldSchema, key string) string {
	if pk.GetDataType() == schemapb.DataType_VarChar {
		return strconv.Quote(key)
	}
	return key
}

// Expr selects the range's rows after cursor (nil: from the range's start).
// The expression of an open range is empty: callers pass a limit.
func (r KeyRange) Expr(pk *schemapb.FieldSchema, cursor *string) string {
	name := pk.GetName()
	var parts []string
	if lo := cursor; lo != nil || r.Gt != nil {
		if lo == nil {
			lo = r.Gt
		}
		parts = append(parts, name+" > "+literal(pk, *lo))
	}
	if r.Le != nil {
		parts = append(parts, name+" <= "+literal(pk, *r.Le))
	}
	if len(parts) == 0 {
		// Every key. Milvus cannot parse the smallest int64 as a literal,
		// but takes an empty expression with a limit, which pages always
		// have.
		return ""
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return parts[0] + " && " + parts[1]
}
