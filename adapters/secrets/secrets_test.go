package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/zdm-io/zdm/adapters/secrets"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

func TestSealedCredentials(t *testing.T) {
	ctx := context.Background()
	kv, err := estest.NewStore(t).KV(ctx, "ZDM_SECRETS")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	key, err := secrets.LoadKey("", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := secrets.LoadKey("", keyFile)
	if !bytes.Equal(key, again) {
		t.Fatal("the key file is not reused")
	}
	s, _ := secrets.New(kv, key, eventstore.ErrKeyNotFound)
	want := domain.Credentials{Username: "root", Password: "Milvus-pw"}
	if err := s.Put(ctx, "c-1", want); err != nil {
		t.Fatal(err)
	}
	raw, _ := kv.Get(ctx, "c-1")
	if bytes.Contains(raw, []byte("Milvus-pw")) || bytes.Contains(raw, []byte("root")) {
		t.Fatal("credentials stored in the clear")
	}
	if got, err := s.Get(ctx, "c-1"); err != nil || got != want {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if got, err := s.Get(ctx, "c-none"); err != nil || !got.Empty() {
		t.Fatalf("missing: %+v %v", got, err)
	}
	// A sealed value copied under another cluster does not open.
	_ = kv.Put(ctx, "c-2", raw)
	if _, err := s.Get(ctx, "c-2"); err == nil {
		t.Fatal("credentials opened under another cluster ID")
	}
	other, _ := secrets.LoadKey("", filepath.Join(t.TempDir(), "k"))
	wrong, _ := secrets.New(kv, other, eventstore.ErrKeyNotFound)
	if _, err := wrong.Get(ctx, "c-1"); err == nil {
		t.Fatal("opened with another key")
	}
	if _, err := secrets.LoadKey("bm90IDMyIGJ5dGVz", keyFile); err == nil {
		t.Fatal("a short ZDM_SECRET_KEY was accepted")
	}
	if err := s.Delete(ctx, "c-1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "c-1"); !got.Empty() {
		t.Fatal("not deleted")
	}
}

// Instances sharing a NATS must share a key: the second with another key
// is refused at its start, not on a cluster's credentials mid-migration.
func TestAnInstanceWithAnotherKeyIsRefusedAtStart(t *testing.T) {
	ctx := context.Background()
	kv, err := estest.NewStore(t).KV(ctx, "ZDM_SECRETS")
	if err != nil {
		t.Fatal(err)
	}
	first, _ := secrets.LoadKey("", filepath.Join(t.TempDir(), "a.key"))
	other, _ := secrets.LoadKey("", filepath.Join(t.TempDir(), "b.key"))
	a, _ := secrets.New(kv, first, eventstore.ErrKeyNotFound)
	if err := a.CheckKey(ctx); err != nil {
		t.Fatalf("first instance: %v", err)
	}
	same, _ := secrets.New(kv, first, eventstore.ErrKeyNotFound)
	if err := same.CheckKey(ctx); err != nil {
		t.Fatalf("an instance with the same key: %v", err)
	}
	b, _ := secrets.New(kv, other, eventstore.ErrKeyNotFound)
	if err := b.CheckKey(ctx); !errors.Is(err, secrets.ErrKeyDiffers) {
		t.Fatalf("an instance with another key: %v, want ErrKeyDiffers", err)
	}
}

func TestSealedValuesOpenOnlyWithWhatTheyAreAbout(t *testing.T) {
	ctx := context.Background()
	kv, err := estest.NewStore(t).KV(ctx, "ZDM_SECRETS")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := secrets.LoadKey("", filepath.Join(t.TempDir(), "secret.key"))
	s, _ := secrets.New(kv, key, eventstore.ErrKeyNotFound)
	sealed, err := s.Seal("m-1/alice", []byte("pw-1"))
	if err != nil || bytes.Contains(sealed, []byte("pw-1")) {
		t.Fatalf("sealed %q, %v", sealed, err)
	}
	if got, err := s.Open("m-1/alice", sealed); err != nil || string(got) != "pw-1" {
		t.Fatalf("opened %q, %v", got, err)
	}
	if _, err := s.Open("m-1/bob", sealed); err == nil {
		t.Fatal("a value sealed about one user opened about another")
	}
	// Neither kind opens as the other, even under the same name.
	_ = kv.Put(ctx, "m-1/alice", sealed)
	if _, err := s.Get(ctx, "m-1/alice"); err == nil {
		t.Fatal("a sealed value opened as a cluster's credentials")
	}
	if _, err := s.Open("m-1/alice", sealed[:4]); err == nil {
		t.Fatal("a cut value opened")
	}
}
