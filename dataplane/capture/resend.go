package capture

import (
	"context"
	"strings"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// A relayed call the driving instance died with may have reached the
// source, or not: no one can say. Whether it is sent again to the next
// driving instance depends on what running it twice does.
type resend int

const (
	never resend = iota
	// always: a read, which changes nothing, and a delete, which leaves
	// the same rows whether it ran once or twice.
	always
	// ifKeysOfItsOwn: an upsert replaces the rows of the keys it carries,
	// the same whether it ran once or twice, unless its collection's
	// keys are the server's (autoID): from Milvus 2.4 such an upsert gives
	// its row a new key, so twice leaves two rows.
	ifKeysOfItsOwn
)

// again says whether a call of method is sent again when the driving
// instance died with it. An insert is not: twice is two rows.
func again(method string) resend {
	name, ok := strings.CutPrefix(method, "/"+milvusService+"/")
	if !ok {
		return never
	}
	switch name {
	case "Search", "HybridSearch", "Query", "CalcDistance", "RunAnalyzer", "Dummy", "Delete":
		return always
	case "Upsert":
		return ifKeysOfItsOwn
	}
	for _, prefix := range []string{"Get", "Describe", "Show", "Has", "List", "Select", "Check"} {
		if strings.HasPrefix(name, prefix) {
			return always
		}
	}
	return never
}

// upsertNames is the database and collection an upsert from the client of
// ctx writes.
func upsertNames(ctx context.Context, req []byte) (db, coll string, ok bool) {
	msg, _ := milvus.DecodeRequest("Upsert", req)
	if msg == nil {
		return "", "", false
	}
	in, _ := metadata.FromIncomingContext(ctx)
	dbHeader := ""
	if v := in.Get("dbname"); len(v) > 0 {
		dbHeader = v[0]
	}
	db, coll = milvus.RequestNames("Upsert", msg, dbHeader)
	return db, coll, true
}

// givesItsKeys says whether a described collection takes its clients'
// keys (its key field is not autoID).
func givesItsKeys(d *milvuspb.DescribeCollectionResponse) bool {
	pk := (&milvus.Collection{Schema: d.GetSchema()}).PrimaryField()
	return pk != nil && !pk.GetAutoID()
}

// keysOfItsOwn asks the driving instance at cc, as the client of ctx,
// whether the collection the upsert req writes takes its clients' keys.
// reached is false if that instance went too before it answered, or sent
// the question back, not driving.
func (e *Endpoint) keysOfItsOwn(ctx context.Context, cc *grpc.ClientConn, req []byte) (own, reached bool) {
	db, coll, ok := upsertNames(ctx, req)
	if !ok {
		return false, true
	}
	ask, err := proto.Marshal(&milvuspb.DescribeCollectionRequest{DbName: db, CollectionName: coll})
	if err != nil {
		return false, true
	}
	var resp []byte
	var trailer metadata.MD
	err = cc.Invoke(relayedContext(ctx), "/"+milvusService+"/DescribeCollection", &ask, &resp,
		grpc.ForceCodecV2(upstreamCodec{}), grpc.Trailer(&trailer))
	if outcomeOf(ctx, err, trailer) != relayServed {
		return false, false
	}
	var described milvuspb.DescribeCollectionResponse
	if err == nil {
		if err = proto.Unmarshal(resp, &described); err == nil {
			err = milvus.Check("describe collection "+coll, described.GetStatus(), nil)
		}
	}
	if err != nil {
		e.notAgain(db, coll, err)
		return false, true
	}
	return givesItsKeys(&described), true
}

// keysOfItsOwnHere is keysOfItsOwn once this instance drives: it asks the
// cluster through its own proxy.
func (e *Endpoint) keysOfItsOwnHere(ctx context.Context, p *Proxy, req []byte) bool {
	db, coll, ok := upsertNames(ctx, req)
	if !ok {
		return false
	}
	d, err := p.describe(ctx, db, coll)
	if err != nil {
		e.notAgain(db, coll, err)
		return false
	}
	return givesItsKeys(d)
}

func (e *Endpoint) notAgain(db, coll string, err error) {
	e.logger.Warn("a relayed upsert the driving zdmd was lost with is not sent again: its collection could not be described",
		"cluster", e.clusterID, "collection", db+"/"+coll, "err", err)
}

// upsertAgain counts a lost upsert, sent again if its collection takes
// its clients' keys (own), and says whether it is.
func (e *Endpoint) upsertAgain(own bool) bool {
	e.countLost(own)
	if own {
		e.logger.Info("the driving zdmd was lost with a relayed upsert of keys the client gives; sending it again", "cluster", e.clusterID)
	}
	return own
}

// countLost counts a relayed call the driving instance died with: sent
// again, or failed to its client.
func (e *Endpoint) countLost(resent bool) {
	if e.lost != nil {
		e.lost(resent)
	}
}
