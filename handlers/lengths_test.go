package handlers_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
)

// The API's document bounds text fields in characters (maxLength), and so
// must the checks: a username of 256 two-byte letters is within its
// bound, one more is not. A fuzzer sending such text found the checks
// counting bytes, refusing what the document allows.
func TestTextBoundsCountCharactersNotBytes(t *testing.T) {
	base := handlers.RegisterCluster{Name: "prod", Organization: "acme", Project: "p", Endpoint: "h:1"}
	s3 := domain.S3Storage{Endpoint: "s3:9000", Bucket: "milvus"}
	for _, tc := range []struct {
		field string
		check func(v string) error
		max   int
	}{
		{"username", func(v string) error { r := base; r.Username, r.Password = v, "p"; return r.Validate() }, 256},
		{"password", func(v string) error { r := base; r.Username, r.Password = "u", v; return r.Validate() }, 1024},
		{"storage_s3.region", func(v string) error { st := s3; st.Region = v; return handlers.ValidateS3(st, "", "") }, 64},
		{"storage_s3.access_key", func(v string) error { return handlers.ValidateS3(s3, v, "s") }, 1024},
		{"storage_s3.secret_key", func(v string) error { return handlers.ValidateS3(s3, "a", v) }, 1024},
		{"storage_s3.root_path", func(v string) error { st := s3; st.RootPath = v; return handlers.ValidateS3(st, "", "") }, 1024},
	} {
		if err := tc.check(strings.Repeat("é", tc.max)); err != nil {
			t.Errorf("%s of %d two-byte characters: %v, want it taken", tc.field, tc.max, err)
		}
		var ve *domain.ValidationError
		if err := tc.check(strings.Repeat("é", tc.max+1)); !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("%s of %d characters: %v, want it refused naming %s", tc.field, tc.max+1, err, tc.field)
		}
	}
}
