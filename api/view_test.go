package api

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
	"github.com/zdm-io/zdm/projections/viewstest"
)

// storedHistory holds one migration's history.
type storedHistory struct{ subject string }

func (h storedHistory) Page(_ context.Context, subject string, _ uint64, _ int, _ func(domain.Event) bool) ([]domain.Record, uint64, bool, error) {
	if subject != h.subject {
		return nil, 0, false, nil
	}
	return []domain.Record{{Seq: 1, Event: domain.MigrationRequested{ID: "m-0123456789abcdef"}}}, 1, false, nil
}

// A migration whose history exists is waited for until this instance's
// view shows it; one with no history is not waited for.
func TestAStoredMigrationIsWaitedForUntilItsViewShowsIt(t *testing.T) {
	const id = "m-0123456789abcdef"
	views := projections.NewMigrations(viewstest.New())
	subject, _ := domain.MigrationStream(id)
	s := &Server{cfg: Config{Migrations: views, History: storedHistory{subject}}}
	get := func(id string) (*projections.MigrationView, bool, time.Duration) {
		c := echo.New().NewContext(httptest.NewRequest("GET", "/v1/migrations/"+id, nil), httptest.NewRecorder())
		c.SetParamNames("id")
		c.SetParamValues(id)
		began := time.Now()
		v, ok := awaitStored[*projections.MigrationView](c, s.cfg.History, s.cfg.Migrations, domain.MigrationStream)
		return v, ok, time.Since(began)
	}
	time.AfterFunc(300*time.Millisecond, func() {
		_ = views.Handle(context.Background(), subject, []domain.Record{{Seq: 1, At: time.Now(),
			Event: domain.MigrationRequested{ID: id, Organization: "acme", Options: domain.Options{}.WithDefaults()}}})
	})
	v, ok, took := get(id)
	if !ok || v.ID != id || took < 250*time.Millisecond {
		t.Fatalf("got %v %v after %s; want the view once projected, about 300 ms", v, ok, took)
	}
	if _, ok, took := get("m-fedcba9876543210"); ok || took > time.Second {
		t.Fatalf("a migration with no history: found %v after %s", ok, took)
	}
}
