package milvus

import (
	"maps"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// KeptAutoIDProperty marks a target collection whose source gave its keys
// (autoID) and whose keys were kept: the target field takes explicit keys,
// and after the switch the proxy gives keys to inserts that send none, as
// the source did.
const KeptAutoIDProperty = "zdm.auto_id"

// KeepKeys makes schema's autoID key field one that takes the source's
// keys (in place) and returns props with the mark that has the proxy give
// keys after the switch; a schema without autoID keys is left as it is.
func KeepKeys(schema *schemapb.CollectionSchema, props map[string]string) map[string]string {
	for _, f := range schema.GetFields() {
		if f.GetIsPrimaryKey() && f.GetAutoID() {
			f.AutoID = false
			out := maps.Clone(props)
			if out == nil {
				out = map[string]string{}
			}
			out[KeptAutoIDProperty] = "true"
			return out
		}
	}
	return props
}
