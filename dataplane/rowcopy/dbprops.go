package rowcopy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// databaseNotes names the source's databases that have properties (a
// replica count, resource groups, quotas, writes or reads denied), which
// zdm does not copy: the target's databases are made bare, and an
// application that relied on them would find them gone after the switch.
// They are not copied because several would stop the migration itself
// (a target denying writes takes no copy), or cannot be met by a target
// without the source's resource groups; the operator sets them when the
// target can take them.
func databaseNotes(ctx context.Context, src *milvus.Conn, dbs []milvus.Database) []string {
	var notes []string
	for _, db := range dbs {
		props, err := src.DatabaseProperties(ctx, db.Name)
		if err != nil {
			notes = append(notes, fmt.Sprintf("The properties of the source's database %s could not be read (%v): zdm does not copy database properties; "+
				"compare them on both clusters before the switch.", db.Name, err))
			continue
		}
		if len(props) == 0 {
			continue
		}
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(props)) {
			kv = append(kv, k+"="+props[k])
		}
		notes = append(notes, fmt.Sprintf("The source's database %s has properties zdm does not copy (%s): give them to the target's database "+
			"(AlterDatabase) before the switch, and one that denies writes only after it.", db.Name, strings.Join(kv, ", ")))
	}
	return notes
}
