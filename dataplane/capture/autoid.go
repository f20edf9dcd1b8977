package capture

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// keyRun gives the keys of one collection: Milvus's own shape of autoID
// (milliseconds since the epoch above 18 bits of sequence), above every
// key the collection held when the run began and above every key given
// since, so a key is never given twice by this process.
type keyRun struct {
	mu   sync.Mutex
	last int64
}

func (r *keyRun) take(n int, now time.Time) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := max(now.UnixMilli()<<18, r.last+1)
	keys := make([]int64, n)
	for i := range keys {
		keys[i] = start + int64(i)
	}
	r.last = start + int64(n) - 1
	return keys
}

// autoKeys is the proxy's key giver for kept-autoID collections, after the
// switch routed their traffic to the target.
type autoKeys struct {
	mu    sync.Mutex
	known map[string]keptCollection // by address/db/collection
}

// keptCollection is what the proxy learnt of a collection: its key run
// and key field if its autoID keys were kept, else nothing.
type keptCollection struct {
	run *keyRun
	pk  string
}

// giveKeys gives keys to an insert that sends none into a kept-autoID
// collection; the target's answer returns them, as the source's did.
func (p *Proxy) giveKeys(ctx context.Context, cc milvuspb.MilvusServiceClient, addr, dbHeader string, req []byte) ([]byte, error) {
	// Read without the vectors: most inserts go through as they are.
	msg, _ := milvus.DecodeRequest("Insert", req)
	head, ok := msg.(*milvuspb.InsertRequest)
	if !ok {
		return req, nil // the server answers a request it cannot read
	}
	db, coll := milvus.RequestNames("Insert", head, dbHeader)
	kept, err := p.keys.lookup(ctx, cc, addr, db, coll)
	if err != nil {
		return nil, err
	}
	if kept.run == nil || head.GetNumRows() == 0 || milvus.ColumnLen(milvus.Column(head.GetFieldsData(), kept.pk)) > 0 {
		return req, nil // keys of its own, if any: the target takes them
	}
	var r milvuspb.InsertRequest
	if err := proto.Unmarshal(req, &r); err != nil {
		return req, nil
	}
	cols := r.FieldsData[:0]
	for _, c := range r.GetFieldsData() {
		if c.GetFieldName() != kept.pk { // an empty key column is no keys
			cols = append(cols, c)
		}
	}
	r.FieldsData = append(cols, milvus.Int64Column(kept.pk, kept.run.take(int(r.GetNumRows()), time.Now())))
	return proto.Marshal(&r)
}

// lookup returns what a collection is to the key giver, looked up once.
func (a *autoKeys) lookup(ctx context.Context, cc milvuspb.MilvusServiceClient, addr, db, coll string) (keptCollection, error) {
	name := addr + "/" + db + "/" + coll
	a.mu.Lock()
	kept, known := a.known[name]
	a.mu.Unlock()
	if known {
		return kept, nil
	}
	d, err := cc.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{DbName: db, CollectionName: coll})
	if err := milvus.Check("describe collection "+coll, d.GetStatus(), err); err != nil {
		return kept, err
	}
	field := (&milvus.Collection{Schema: d.GetSchema()}).PrimaryField()
	if field != nil && !field.GetAutoID() && field.GetDataType() == schemapb.DataType_Int64 && milvus.KVMap(d.GetProperties())[milvus.KeptAutoIDProperty] == "true" {
		floor, err := highestKey(ctx, cc, db, coll, field.GetName(), time.Now().UnixMilli()<<18)
		if err != nil {
			return kept, fmt.Errorf("zdm: cannot find the highest key of %s/%s to give new keys above it: %w", db, coll, err)
		}
		kept = keptCollection{run: &keyRun{last: floor}, pk: field.GetName()}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.known == nil {
		a.known = map[string]keptCollection{}
	}
	if prior, ok := a.known[name]; ok { // looked up meanwhile
		return prior, nil
	}
	a.known[name] = kept
	return kept, nil
}

// highestKey finds a collection's highest key from "from" up (0 when it
// holds none there: keys below are below every key given) by bisection
// over "pk >= x" queries, since Milvus 2.3 has no max(): at most about 64
// queries, once per collection and process. The first is strongly
// consistent, so every write before it is seen by those after.
func highestKey(ctx context.Context, cc milvuspb.MilvusServiceClient, db, coll, pk string, from int64) (int64, error) {
	level := commonpb.ConsistencyLevel_Strong
	first := func(lo int64) (int64, bool, error) {
		r, err := cc.Query(ctx, &milvuspb.QueryRequest{DbName: db, CollectionName: coll, Expr: pk + " >= " + strconv.FormatInt(lo, 10),
			OutputFields: []string{pk}, QueryParams: []*commonpb.KeyValuePair{{Key: "limit", Value: "1"}}, ConsistencyLevel: level})
		if err := milvus.Check("query "+coll, r.GetStatus(), err); err != nil {
			return 0, false, err
		}
		level = commonpb.ConsistencyLevel_Eventually
		keys := milvus.KeysOf(milvus.Column(r.GetFieldsData(), pk)).Ints
		if len(keys) == 0 {
			return 0, false, nil
		}
		return keys[0], true, nil
	}
	lo, found, err := first(from)
	if err != nil || !found {
		return 0, err
	}
	hi := int64(math.MaxInt64)
	// Invariant: a key >= lo exists, and none above hi.
	for lo < hi {
		mid := lo + int64((uint64(hi)-uint64(lo))/2) + 1 // unsigned: hi-lo may pass MaxInt64
		k, ok, err := first(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = k
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}

// asTheSourceShowedIt rewrites a DescribeCollection answer of the target
// so that a kept-autoID collection shows its key field as autoID again,
// without zdm's mark: SDKs check inserts against the description, and an
// application inserting without keys must not notice the switch.
func asTheSourceShowedIt(resp []byte) []byte {
	if !bytes.Contains(resp, []byte(milvus.KeptAutoIDProperty)) {
		return resp // not a kept-autoID collection: as it is
	}
	var d milvuspb.DescribeCollectionResponse
	if err := proto.Unmarshal(resp, &d); err != nil {
		return resp
	}
	kept := false
	props := d.GetProperties()[:0]
	for _, kv := range d.GetProperties() {
		if kv.GetKey() == milvus.KeptAutoIDProperty {
			kept = kv.GetValue() == "true"
			continue
		}
		props = append(props, kv)
	}
	pk := (&milvus.Collection{Schema: d.GetSchema()}).PrimaryField()
	if !kept || pk == nil || pk.GetDataType() != schemapb.DataType_Int64 {
		return resp
	}
	pk.AutoID = true
	d.Properties = props
	out, err := proto.Marshal(&d)
	if err != nil {
		return resp
	}
	return out
}

// sawKeys raises the largest key the source gave an insert of subject.
func (c *Capture) sawKeys(subject string, keys []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		c.givenKeys[subject] = max(c.givenKeys[subject], k)
	}
}
