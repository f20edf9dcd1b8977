package capture

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
)

// xorSealer stands for the secret store: it hides a value behind a key
// and opens it only about what it was sealed about.
type xorSealer struct{}

func (xorSealer) Seal(about string, plain []byte) ([]byte, error) {
	out := []byte(about + "\x00")
	for _, b := range plain {
		out = append(out, b^0x5a)
	}
	return out, nil
}

func (xorSealer) Open(about string, sealed []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(sealed, []byte(about+"\x00"))
	if !ok {
		return nil, errors.New("do not open")
	}
	out := make([]byte, len(rest))
	for i, b := range rest {
		out[i] = b ^ 0x5a
	}
	return out, nil
}

// A password made or changed through the proxy is journaled sealed, and
// the applier opens it to what the client sent; opened for another
// migration, it does not.
func TestPasswordsAreJournaledSealed(t *testing.T) {
	c, journal := journaledCapture(t)
	c.SealPasswords(xorSealer{})
	ctx := context.Background()
	sent := []proto.Message{
		&milvuspb.CreateCredentialRequest{Username: "u", Password: "bmV3LXB3"},
		&milvuspb.UpdateCredentialRequest{Username: "u", OldPassword: "bmV3LXB3", NewPassword: "b3RoZXI="},
		&milvuspb.DeleteCredentialRequest{Username: "u"},
	}
	for _, msg := range sent {
		name := proto.MessageName(msg)
		method := strings.TrimSuffix(name[strings.LastIndexByte(name, '.')+1:], "Request")
		req, _ := proto.Marshal(msg)
		k, err := c.before(ctx, "src", "/milvus.proto.milvus.MilvusService/"+method, req, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		ok, _ := proto.Marshal(&commonpb.Status{})
		if err := c.after(ctx, k, req, ok); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range sent {
		_, data, found, err := journal.Next(ctx, DatabaseSubject("m-1", "default"), uint64(i+1))
		if err != nil || !found {
			t.Fatalf("entry %d: %v %v", i+1, found, err)
		}
		for _, pw := range []string{"bmV3LXB3", "b3RoZXI="} {
			if bytes.Contains(data, []byte(pw)) {
				t.Errorf("entry %d holds the password %s in the clear", i+1, pw)
			}
		}
		e, err := UnmarshalEntry(data)
		if err != nil {
			t.Fatal(err)
		}
		got := proto.Clone(want)
		got.Reset()
		if err := proto.Unmarshal(e.Request, got); err != nil {
			t.Fatal(err)
		}
		if _, fields := passwordsOf(got); len(fields) > 0 {
			if err := OpenPasswords(xorSealer{}, "m-2", proto.Clone(got)); err == nil {
				t.Errorf("entry %d's password opened for another migration", i+1)
			}
			if err := OpenPasswords(nil, "m-1", proto.Clone(got)); err == nil {
				t.Errorf("entry %d's sealed password was taken as it is", i+1)
			}
		}
		if err := OpenPasswords(xorSealer{}, "m-1", got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("entry %d opened to %v, want %v", i+1, got, want)
		}
	}
}

type brokenSealer struct{ xorSealer }

func (brokenSealer) Seal(string, []byte) ([]byte, error) { return nil, errors.New("no randomness") }

// A password that cannot be sealed is not journaled in the clear: the
// client hears that its change was not recorded, and the migration fails
// as for a write the journal cannot take.
func TestAPasswordThatCannotBeSealedFailsTheMigrationNotTheSecret(t *testing.T) {
	c, journal := journaledCapture(t)
	failed := &recordedFailures{}
	c.failer = failed
	c.SealPasswords(brokenSealer{})
	ctx := context.Background()
	req, _ := proto.Marshal(&milvuspb.CreateCredentialRequest{Username: "u", Password: "bmV3LXB3"})
	k, err := c.before(ctx, "src", "/milvus.proto.milvus.MilvusService/CreateCredential", req, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ok, _ := proto.Marshal(&commonpb.Status{})
	var refusal *Refusal
	if err := c.after(ctx, k, req, ok); !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, "could not record") {
		t.Fatalf("the client heard %v", err)
	}
	if len(failed.reasons) != 1 || failed.reasons[0] != "m-1 journal_unavailable" {
		t.Fatalf("failures %v", failed.reasons)
	}
	if _, _, found, err := journal.Next(ctx, DatabaseSubject("m-1", "default"), 1); err != nil || found {
		t.Fatalf("journaled anyway: %v %v", found, err)
	}
}
