package verify

import (
	"fmt"
	"sort"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// structureDiff names what differs between two collections' structures.
func structureDiff(s, t *milvus.Collection) []string {
	var out []string
	diff := func(what string, a, b any) {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			out = append(out, fmt.Sprintf("%s: %s is %v on the source, %v on the target", s.Key(), what, a, b))
		}
	}
	diff("partitions", s.Partitions, t.Partitions)
	diff("aliases", s.Aliases, t.Aliases)
	diff("shards", s.ShardsNum, t.ShardsNum)
	diff("dynamic field", s.DynamicField, t.DynamicField)
	diff("consistency level", s.ConsistencyLevel, t.ConsistencyLevel)
	diff("properties", sortedPairs(s.Properties), sortedPairs(t.Properties))
	diff("description", s.Schema.GetDescription(), t.Schema.GetDescription())
	var si, ti []string
	for _, x := range s.Indexes {
		si = append(si, x.Name+":"+x.Field+":"+x.Params["index_type"]+":"+x.Params["metric_type"]+":"+x.Params["params"])
	}
	for _, x := range t.Indexes {
		ti = append(ti, x.Name+":"+x.Field+":"+x.Params["index_type"]+":"+x.Params["metric_type"]+":"+x.Params["params"])
	}
	diff("indexes", si, ti)
	var sf, tf []string
	for _, f := range s.Fields {
		sf = append(sf, fieldWords(f))
	}
	for _, f := range t.Fields {
		tf = append(tf, fieldWords(f))
	}
	diff("fields", sf, tf)
	return out
}

// fieldWords is everything a field is created with, but autoID, which a
// migration that preserves keys changes on purpose.
func fieldWords(f milvus.Field) string {
	w := f.Name + ":" + f.Type
	if f.ElementType != "" {
		w += "<" + f.ElementType + ">"
	}
	for _, p := range []struct {
		name string
		v    int64
	}{{"dim", f.Dim}, {"max_length", f.MaxLength}, {"max_capacity", f.MaxCapacity}} {
		if p.v != 0 {
			w += fmt.Sprintf(" %s=%d", p.name, p.v)
		}
	}
	if f.PrimaryKey {
		w += " primary"
	}
	if f.PartitionKey {
		w += " partition-key"
	}
	if f.Description != "" {
		w += fmt.Sprintf(" %q", f.Description)
	}
	return w
}

// sortedPairs lists a collection's properties but zdm's own mark.
func sortedPairs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		if k != milvus.KeptAutoIDProperty {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}
