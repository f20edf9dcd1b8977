package milvus

import (
	"fmt"
	"sort"
	"strings"
)

// Fingerprint is what the forbidden operations change: collections and
// their fields, properties and aliases, per database.
func Fingerprint(inv *Inventory) map[string]string {
	out := map[string]string{}
	for _, d := range inv.Databases {
		out["database "+d.Name] = "exists"
		for _, c := range d.Collections {
			var fields []string
			for _, f := range c.Fields {
				fields = append(fields, fmt.Sprintf("%s:%s:pk=%v:auto=%v:dim=%d:len=%d", f.Name, f.Type, f.PrimaryKey, f.AutoID, f.Dim, f.MaxLength))
			}
			props := make([]string, 0, len(c.Properties))
			for k, v := range c.Properties {
				props = append(props, k+"="+v)
			}
			sort.Strings(props)
			out["collection "+c.Key()] = fmt.Sprintf("fields [%s] properties [%s] aliases %v dynamic %v",
				strings.Join(fields, " "), strings.Join(props, " "), c.Aliases, c.DynamicField)
		}
	}
	return out
}

// Changes lists what differs between two fingerprints, in words.
func Changes(before, after map[string]string) []string {
	var out []string
	for k, v := range before {
		switch w, ok := after[k]; {
		case !ok:
			out = append(out, k+" is gone (dropped or renamed)")
		case w != v:
			out = append(out, fmt.Sprintf("%s changed: %s -> %s", k, v, w))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, k+" appeared")
		}
	}
	sort.Strings(out)
	return out
}

// Without is fp less the keys drop says.
func Without(fp map[string]string, drop func(key string) bool) map[string]string {
	out := make(map[string]string, len(fp))
	for k, v := range fp {
		if !drop(k) {
			out[k] = v
		}
	}
	return out
}
