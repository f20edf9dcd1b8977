package capture

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// Sealer seals what a journal entry must not hold in the clear: the
// passwords of users made or changed through the proxy, which stay in the
// journal until the target has them. Every zdmd sharing the journal opens
// them with the same key, the one its cluster credentials are sealed with.
type Sealer interface {
	Seal(about string, plain []byte) ([]byte, error)
	Open(about string, sealed []byte) ([]byte, error)
}

// sealedMark starts a password sealed in a journal entry; base64 of the
// sealed value follows. A client's password is itself base64, which has
// no colon, so no password a client sent reads as sealed.
const sealedMark = "zdm-sealed:"

// SealPasswords seals the passwords of access calls before they are
// journaled (nil journals them as sent).
func (c *Capture) SealPasswords(s Sealer) { c.sealer = s }

// passwordsOf returns the user an access request is about and its
// password fields, to read or replace; none for any other request.
func passwordsOf(msg proto.Message) (user string, fields []*string) {
	switch r := msg.(type) {
	case *milvuspb.CreateCredentialRequest:
		return r.Username, []*string{&r.Password}
	case *milvuspb.UpdateCredentialRequest:
		return r.Username, []*string{&r.OldPassword, &r.NewPassword}
	}
	return "", nil
}

// sealedAbout binds a sealed password to its migration and user: copied
// into another entry it does not open.
func sealedAbout(migrationID, user string) string { return migrationID + "/" + user }

// sealPasswords returns req, the request of a call of method, with its
// passwords sealed; req itself if it has none.
func sealPasswords(s Sealer, migrationID, method string, req []byte) ([]byte, error) {
	msg, _ := milvus.DecodeRequest(method, req)
	user, fields := passwordsOf(msg)
	if s == nil || len(fields) == 0 {
		return req, nil
	}
	for _, f := range fields {
		if *f == "" {
			continue
		}
		sealed, err := s.Seal(sealedAbout(migrationID, user), []byte(*f))
		if err != nil {
			return nil, fmt.Errorf("seal the password of user %s: %w", user, err)
		}
		*f = sealedMark + base64.StdEncoding.EncodeToString(sealed)
	}
	return proto.Marshal(msg)
}

// OpenPasswords opens, in a request read from migrationID's journal, the
// passwords the capture sealed.
func OpenPasswords(s Sealer, migrationID string, msg proto.Message) error {
	user, fields := passwordsOf(msg)
	for _, f := range fields {
		text, ok := strings.CutPrefix(*f, sealedMark)
		if !ok {
			continue
		}
		if s == nil {
			return fmt.Errorf("the password of user %s is sealed in the journal, and nothing here opens it", user)
		}
		sealed, err := base64.StdEncoding.DecodeString(text)
		var plain []byte
		if err == nil {
			plain, err = s.Open(sealedAbout(migrationID, user), sealed)
		}
		if err != nil {
			return fmt.Errorf("open the password of user %s journaled for migration %s: %w", user, migrationID, err)
		}
		*f = string(plain)
	}
	return nil
}
