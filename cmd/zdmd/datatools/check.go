package datatools

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// CheckReport says whether every acknowledged write of a load journal is on
// a cluster, once, with its last value.
type CheckReport struct {
	Acknowledged int64    `json:"acknowledged"`
	Unsure       int64    `json:"unsure"`
	Keys         int      `json:"keys"`
	Present      int      `json:"present"`
	Missing      int      `json:"missing"`
	Duplicated   int      `json:"duplicated"`
	Stale        int      `json:"stale"`
	Resurrected  int      `json:"resurrected"`
	Examples     []string `json:"examples,omitempty"`
}

// OK reports a clean check.
func (r CheckReport) OK() bool {
	return r.Missing == 0 && r.Duplicated == 0 && r.Stale == 0 && r.Resurrected == 0
}

func (r CheckReport) String() string {
	return fmt.Sprintf("acknowledged %d writes (and %d failed that may have been applied) on %d keys: present %d, missing %d, duplicated %d, stale %d, deleted but present %d",
		r.Acknowledged, r.Unsure, r.Keys, r.Present, r.Missing, r.Duplicated, r.Stale, r.Resurrected)
}

type expected struct {
	present bool
	version int64
	// or: the outcomes of failed writes sent after the last acknowledged
	// one, any of which may have been applied.
	or []expected
}

// accepts reports whether a key seen (present, with version) is an outcome
// the journal allows.
func (e expected) accepts(present bool, version int64, versioned bool) bool {
	is := func(x expected) bool { return x.present == present && (!present || !versioned || x.version == version) }
	if is(e) {
		return true
	}
	for _, x := range e.or {
		if is(x) {
			return true
		}
	}
	return false
}

// Check reads a load journal and compares the cluster with what it says:
// the last acknowledged write to each key decides whether the key must be
// there, and with which version.
func Check(ctx context.Context, c *milvus.Conn, journal io.Reader) (CheckReport, error) {
	var rep CheckReport
	want := map[CollectionName]map[string]expected{}
	keyType := map[CollectionName]string{}
	sc := bufio.NewScanner(journal)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var a Ack
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return rep, fmt.Errorf("journal line %d: %w", rep.Acknowledged+1, err)
		}
		t := CollectionName{a.Database, a.Collection}
		if want[t] == nil {
			want[t] = map[string]expected{}
		}
		keyType[t] = a.KeyType
		outcome := expected{present: a.Op != "delete", version: a.Version}
		if a.Unsure {
			rep.Unsure++
			for _, k := range a.Keys {
				w := want[t][k]
				w.or = append(w.or, outcome)
				want[t][k] = w
			}
			continue
		}
		rep.Acknowledged++
		for _, k := range a.Keys {
			want[t][k] = outcome
		}
	}
	if err := sc.Err(); err != nil {
		return rep, err
	}
	for t, keys := range want {
		if err := checkCollection(ctx, c, t, keyType[t], keys, &rep); err != nil {
			return rep, err
		}
	}
	sort.Strings(rep.Examples)
	return rep, nil
}

func checkCollection(ctx context.Context, c *milvus.Conn, t CollectionName, keyType string, keys map[string]expected, rep *CheckReport) error {
	col, err := c.Structure(ctx, t.Database, t.Collection)
	if err != nil {
		return err
	}
	if !col.Loaded {
		return fmt.Errorf("%s/%s is not loaded on %s; load it to check", t.Database, t.Collection, c.Address())
	}
	pk := col.PrimaryField().GetName()
	version := ""
	for _, f := range col.Schema.GetFields() {
		if !f.GetIsPrimaryKey() && f.GetDataType() == schemapb.DataType_Int64 {
			version = f.GetName()
			break
		}
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	rep.Keys += len(names)
	example := func(format string, args ...any) {
		if len(rep.Examples) < 20 {
			rep.Examples = append(rep.Examples, fmt.Sprintf("%s/%s: ", t.Database, t.Collection)+fmt.Sprintf(format, args...))
		}
	}
	for start := 0; start < len(names); start += 500 {
		batch := names[start:min(start+500, len(names))]
		k := milvus.KeysFromStrings(keyType, batch)
		fields := []string{pk}
		if version != "" {
			fields = append(fields, version)
		}
		// Each key's row once, however many the collection holds: a query
		// counts the rows of a key held twice against its limit.
		count, last := map[string]int{}, map[string]int64{}
		err := c.KeyRows(ctx, t.Database, t.Collection, pk, k, fields, nil, 0, func(cols []*schemapb.FieldData) error {
			var versions []int64
			if version != "" {
				versions = milvus.Column(cols, version).GetScalars().GetLongData().GetData()
			}
			for i, key := range milvus.KeysOf(milvus.Column(cols, pk)).Strings() {
				count[key]++
				if i < len(versions) {
					last[key] = versions[i]
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		// A query merges rows with the same key; count(*) does not, so it
		// is what shows a duplicate. Look key by key only when it does.
		total, err := c.CountWhere(ctx, t.Database, t.Collection, k.InExpr(pk))
		if err != nil {
			return err
		}
		if total > int64(len(count)) {
			present := make([]string, 0, len(count))
			for key := range count {
				present = append(present, key)
			}
			if err := findDuplicates(ctx, c, t, pk, keyType, present, count); err != nil {
				return err
			}
		}
		for _, key := range batch {
			w := keys[key]
			n := count[key]
			switch {
			case n > 1:
				rep.Duplicated++
				example("key %s appears %d times", key, n)
			case w.accepts(n > 0, last[key], version != ""):
				if n > 0 {
					rep.Present++
				}
			case n == 0:
				rep.Missing++
				example("missing key %s", key)
			case !w.present && len(w.or) == 0:
				rep.Resurrected++
				example("deleted key %s is present", key)
			default:
				rep.Stale++
				example("key %s has version %d, want %d", key, last[key], w.version)
			}
		}
	}
	return nil
}

// findDuplicates halves a set of keys until it finds the ones counted more
// than once: a few counts per duplicate instead of one per key.
func findDuplicates(ctx context.Context, c *milvus.Conn, t CollectionName, pk, keyType string, keys []string, count map[string]int) error {
	k := milvus.KeysFromStrings(keyType, keys)
	n, err := c.CountWhere(ctx, t.Database, t.Collection, k.InExpr(pk))
	if err != nil || n == int64(len(keys)) {
		return err
	}
	if len(keys) == 1 {
		count[keys[0]] = int(n)
		return nil
	}
	half := len(keys) / 2
	if err := findDuplicates(ctx, c, t, pk, keyType, keys[:half], count); err != nil {
		return err
	}
	return findDuplicates(ctx, c, t, pk, keyType, keys[half:], count)
}
