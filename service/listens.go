package service

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
)

// clusterIndex tells the API which cluster has a proxy address, and
// which registrations are of one Milvus, from the clusters' projection.
// Two registrations sent to two zdmd at once may both pass it;
// proxyClaims then gives the address to one of them.
type clusterIndex struct{ m *Main }

func (l clusterIndex) ListenHolder(listen, except string) (id, org string) {
	for _, v := range l.m.clusters.List() {
		if !v.Deleted && v.ID != except && v.ProxyListen != "" && domain.SameListen(v.ProxyListen, listen) {
			return v.ID, v.Organization
		}
	}
	return "", ""
}

func (e clusterIndex) EndpointTwins(endpoint, except string) []string {
	var ids []string
	for _, v := range twinsOf(e.m.clusters.List(), endpoint, except) {
		ids = append(ids, v.ID)
	}
	return ids
}

// SeenCluster waits for the clusters' projection, which takes in every
// cluster event in stream order, one after the other.
func (e clusterIndex) SeenCluster(ctx context.Context, id string, seq uint64) error {
	return e.m.clusters.Wait(ctx, id, seq)
}

// twinsOf returns the views other than except, deleted ones left out,
// registered with the Milvus endpoint endpoint (its host in any case).
func twinsOf(views []*projections.ClusterView, endpoint, except string) []*projections.ClusterView {
	return slices.DeleteFunc(slices.Clone(views), func(v *projections.ClusterView) bool {
		return v.Deleted || v.ID == except || !sameMilvus(v.Endpoint, endpoint)
	})
}

// endpointHolder returns the cluster of views other than except with the
// Milvus endpoint endpoint (its host in any case) that a running
// migration holds, and that migration; "" if none. The same Milvus may be
// registered more than once: this says when it is busy.
func endpointHolder(views []*projections.ClusterView, endpoint, except string) (id, migrationID string) {
	for _, v := range twinsOf(views, endpoint, except) {
		if v.MigrationID != "" {
			return v.ID, v.MigrationID
		}
	}
	return "", ""
}

// sameMilvus says whether two registrations' endpoints are one Milvus:
// the same address, its host in any case.
func sameMilvus(a, b string) bool { return strings.EqualFold(a, b) }

// proxyClaims gives each proxy address to one cluster. Of clusters whose
// addresses contend (registered by an older zdmd, or by two at once), the
// one registered first has it, in every zdmd and after every restart;
// contended names each other one with the cluster that has its address.
func proxyClaims(views []*projections.ClusterView) (claims []*projections.ClusterView, contended map[string]string) {
	live := slices.DeleteFunc(slices.Clone(views), func(v *projections.ClusterView) bool { return v.Deleted || v.ProxyListen == "" })
	slices.SortStableFunc(live, func(a, b *projections.ClusterView) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	contended = map[string]string{}
next:
	for _, v := range live {
		for _, w := range claims {
			if domain.SameListen(v.ProxyListen, w.ProxyListen) {
				contended[v.ID] = w.ID
				continue next
			}
		}
		claims = append(claims, v)
	}
	return claims, contended
}
