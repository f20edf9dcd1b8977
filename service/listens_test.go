package service

import (
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/projections"
)

// Of clusters whose proxy addresses contend (registered before zdm
// refused it, or by two zdmd at once), the one registered first has the
// address, whatever the order of their IDs; a deleted one has none.
func TestContendingProxyAddressesGoToTheClusterRegisteredFirst(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	view := func(id, listen string, created int, deleted bool) *projections.ClusterView {
		return &projections.ClusterView{ID: id, ProxyListen: listen, CreatedAt: at.Add(time.Duration(created) * time.Second), Deleted: deleted}
	}
	claims, contended := proxyClaims([]*projections.ClusterView{
		view("c-1", "127.0.0.1:19540", 3, false),
		view("c-2", "0.0.0.0:19540", 2, false),
		view("c-3", "127.0.0.1:19541", 1, false),
		view("c-4", "127.0.0.1:19541", 0, true),
		view("c-5", "", 0, false),
	})
	var ids []string
	for _, v := range claims {
		ids = append(ids, v.ID)
	}
	if strings.Join(ids, " ") != "c-3 c-2" || len(contended) != 1 || contended["c-1"] != "c-2" {
		t.Fatalf("claims %v, contended %v; want c-3 and c-2 serving, c-1 left out for c-2", ids, contended)
	}
}
