package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// A refused body is named as the client wrote it: the whole path of a
// field, its type in JSON's words, and what is wrong with the body.
func TestABadBodyIsNamedAsTheClientWroteIt(t *testing.T) {
	type target struct {
		Name    string `json:"name"`
		Project string
	}
	type request struct {
		Target  target   `json:"target"`
		Targets []target `json:"targets"`
		Options *struct {
			Limit int64 `json:"limit"`
			Shown bool  `json:"shown"`
		} `json:"options"`
	}
	for _, c := range []struct {
		body, code, field, message string
	}{
		{`{"options":{"limit":5,"lag":3}}`, "unknown_field", "options.lag", "options.lag is not a field of this request"},
		{`{"targets":[{"name":"a"},{"name":"b","colour":1}]}`, "unknown_field", "targets[1].colour", ""},
		{`{"target":{"nme":"a"}}`, "unknown_field", "target.nme", ""},
		// Names are matched exactly: the decoder alone would take these
		// as name and Project.
		{`{"target":{"NAME":"a"}}`, "unknown_field", "target.NAME", "target.NAME is not a field of this request (names are matched exactly)"},
		{`{"target":{"project":"x"}}`, "unknown_field", "target.project", ""},
		// A key given twice, which the decoder would take the last of.
		{`{"target":{"name":"a","name":"b"}}`, "invalid_field", "target.name", "target.name is given more than once"},
		{`{"targets":[{"name":"a"},{"name":"b","Project":"p","name":"c"}]}`, "invalid_field", "targets[1].name", ""},
		{`{"options":{"limit":1},"options":{"limit":2}}`, "invalid_field", "options", ""},
		{`{"target":{"":1}}`, "unknown_field", `target.""`, `target."" is not a field of this request`},
		{`{"options":{"a.b c":1}}`, "unknown_field", `options."a.b c"`, ""},
		{`{"options":{"limit":1.5}}`, "invalid_field", "options.limit", "options.limit must be a whole number, not number 1.5"},
		{`{"options":{"shown":"yes"}}`, "invalid_field", "options.shown", "options.shown must be true or false, not string"},
		{`{"target":[1]}`, "invalid_field", "target", "target must be an object, not array"},
		{`[1,2]`, "malformed_json", "", "the body must be a JSON object, not array"},
		{``, "malformed_json", "", "the request has no body: send a JSON object"},
		{`{"target":`, "malformed_json", "", ""},
		{`{} {}`, "malformed_json", "", "the body holds more than one JSON value"},
	} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body))
		var v request
		err := bind(echo.New().NewContext(req, httptest.NewRecorder()), &v)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %v, want an API error", c.body, err)
		}
		if e.Status != 400 || e.Code != c.code || e.Field != c.field || c.message != "" && e.Message != c.message {
			t.Errorf("%s: %d %s field %q %q, want %s field %q %q", c.body, e.Status, e.Code, e.Field, e.Message, c.code, c.field, c.message)
		}
	}
}

// A body that names every field exactly, once, is taken.
func TestABodyThatNamesItsFieldsExactlyIsTaken(t *testing.T) {
	type request struct {
		Target struct {
			Name    string `json:"name"`
			Project string
		} `json:"target"`
		Labels map[string]string `json:"labels"`
		List   []map[string]int  `json:"list"`
	}
	body := `{"target":{"name":"a","Project":"p"},"labels":{"Name":"x","name":"y"},"list":[{"a":1},{"a":2}]}`
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	var v request
	if err := bind(echo.New().NewContext(req, httptest.NewRecorder()), &v); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if v.Target.Name != "a" || v.Target.Project != "p" || v.Labels["Name"] != "x" || len(v.List) != 2 {
		t.Fatalf("%s decoded as %+v", body, v)
	}
}

// A compressed body is refused as such, not as malformed JSON.
func TestACompressedBodyIsRefusedByItsEncoding(t *testing.T) {
	for enc, want := range map[string]int{"gzip": 415, "br": 415, "identity": 0, "": 0} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
		if enc != "" {
			req.Header.Set("Content-Encoding", enc)
		}
		var v struct{}
		err := bind(echo.New().NewContext(req, httptest.NewRecorder()), &v)
		var e *Error
		switch {
		case want == 0 && err != nil:
			t.Errorf("Content-Encoding %q: %v", enc, err)
		case want != 0 && (!errors.As(err, &e) || e.Status != want || e.Field != "Content-Encoding"):
			t.Errorf("Content-Encoding %q: %v, want %d naming the header", enc, err, want)
		}
	}
}
