package milvus

import (
	"context"
	"fmt"
	"slices"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
)

// Replicas is how a loaded collection is served: how many copies of it
// the query nodes hold, and in which resource groups.
type Replicas struct {
	Number int32
	Groups []string
}

// defaultGroup is the resource group every query node is in unless put
// in another.
const defaultGroup = "__default_resource_group"

// Replicas reads how a loaded collection is served.
func (c *Conn) Replicas(ctx context.Context, db, coll string) (Replicas, error) {
	r, err := c.Svc.GetReplicas(c.In(ctx, db), &milvuspb.GetReplicasRequest{DbName: db, CollectionName: coll})
	if err := Check("replicas of "+coll, r.GetStatus(), err); err != nil {
		return Replicas{}, err
	}
	var rep Replicas
	for _, info := range r.GetReplicas() {
		rep.Number++
		if g := info.GetResourceGroupName(); g != "" && g != defaultGroup && !slices.Contains(rep.Groups, g) {
			rep.Groups = append(rep.Groups, g)
		}
	}
	slices.Sort(rep.Groups)
	return rep, nil
}

// LoadAs loads a collection (or those of its partitions that parts
// names) with the replicas and resource groups of rep, and waits until it
// is loaded. A cluster that cannot serve them (fewer query nodes, groups
// it lacks) loads it as it would by default: note says so, for the
// operator to load it again as it should be.
func (c *Conn) LoadAs(ctx context.Context, db, coll string, parts []string, rep Replicas) (note string, err error) {
	if note, err = c.startLoadAs(ctx, db, coll, parts, rep); err != nil {
		return note, err
	}
	return note, c.waitLoaded(ctx, db, coll, parts)
}

// StartLoadAs is LoadAs of a whole collection, without waiting for the
// load.
func (c *Conn) StartLoadAs(ctx context.Context, db, coll string, rep Replicas) (note string, err error) {
	return c.startLoadAs(ctx, db, coll, nil, rep)
}

func (c *Conn) startLoadAs(ctx context.Context, db, coll string, parts []string, rep Replicas) (note string, err error) {
	if rep.Number > 1 || len(rep.Groups) > 0 {
		if err = c.startLoad(ctx, db, coll, parts, rep); err == nil {
			return "", nil
		}
		as := fmt.Sprintf("%d replicas", rep.Number)
		if len(rep.Groups) > 0 {
			as += fmt.Sprintf(" in resource groups %v", rep.Groups)
		}
		note = fmt.Sprintf("%s/%s is loaded with the server's default replicas: the target could not load the %s it has on the source (%v); "+
			"load it so before the switch, or queries are served by fewer replicas after it", db, coll, as, err)
	}
	return note, c.startLoad(ctx, db, coll, parts, Replicas{})
}

// startLoad asks for a collection, or some of its partitions, to be
// loaded with rep's replicas (none: the server's default).
func (c *Conn) startLoad(ctx context.Context, db, coll string, parts []string, rep Replicas) error {
	if len(parts) == 0 {
		r, err := c.Svc.LoadCollection(c.In(ctx, db), &milvuspb.LoadCollectionRequest{DbName: db, CollectionName: coll,
			ReplicaNumber: rep.Number, ResourceGroups: rep.Groups})
		return Check("load "+coll, r, err)
	}
	r, err := c.Svc.LoadPartitions(c.In(ctx, db), &milvuspb.LoadPartitionsRequest{DbName: db, CollectionName: coll, PartitionNames: parts,
		ReplicaNumber: rep.Number, ResourceGroups: rep.Groups})
	return Check("load partitions of "+coll, r, err)
}

// LoadState says whether a collection is loaded, loading or neither.
func (c *Conn) LoadState(ctx context.Context, db, coll string) (commonpb.LoadState, error) {
	s, err := c.Svc.GetLoadState(c.In(ctx, db), &milvuspb.GetLoadStateRequest{DbName: db, CollectionName: coll})
	return s.GetState(), Check("load state "+coll, s.GetStatus(), err)
}
