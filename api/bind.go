package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// bind decodes a JSON body strictly: unknown fields and wrong types are
// 400s naming the field by its whole path; nothing reaches a handler
// half-decoded.
func bind(c echo.Context, v any) error {
	// A compressed body would otherwise be reported as malformed JSON at
	// its first byte.
	if enc := c.Request().Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_encoding", Field: "Content-Encoding",
			Message: fmt.Sprintf("Content-Encoding %s is not taken: send the JSON body uncompressed", enc)}
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		if errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
			return err
		}
		return &Error{Status: http.StatusBadRequest, Code: "malformed_json", Message: "the body could not be read: " + err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
		if dec.More() {
			return &Error{Status: http.StatusBadRequest, Code: "malformed_json", Message: "the body holds more than one JSON value"}
		}
		// The decoder takes the last of a key given twice, and a key that
		// names a field in other letters ("NAME"): both are refused, as
		// the API's document allows neither.
		if f := repeatedKey(body); f != "" {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: f, Message: f + " is given more than once"}
		}
		if f := unknownPath(body, reflect.TypeOf(v)); f != "" {
			return &Error{Status: http.StatusBadRequest, Code: "unknown_field", Field: f, Message: fmt.Sprintf("%s is not a field of this request (names are matched exactly)", f)}
		}
		return nil
	case errors.Is(err, io.EOF):
		return &Error{Status: http.StatusBadRequest, Code: "malformed_json", Message: "the request has no body: send a JSON object"}
	case errors.As(err, &syn):
		return &Error{Status: http.StatusBadRequest, Code: "malformed_json", Message: fmt.Sprintf("malformed JSON at byte %d", syn.Offset)}
	case errors.As(err, &typ) && typ.Field == "":
		return &Error{Status: http.StatusBadRequest, Code: "malformed_json", Message: "the body must be a JSON object, not " + typ.Value}
	case errors.As(err, &typ):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: typ.Field,
			Message: fmt.Sprintf("%s must be %s, not %s", typ.Field, jsonKind(typ.Type), typ.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := unknownPath(body, reflect.TypeOf(v))
		if f == "" {
			f = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		}
		return &Error{Status: http.StatusBadRequest, Code: "unknown_field", Field: f, Message: fmt.Sprintf("%s is not a field of this request", f)}
	}
	return &Error{Status: http.StatusBadRequest, Code: "malformed_json", Message: "the body is not a JSON object: " + err.Error()}
}

// jsonKind names a Go type as a JSON client knows it.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "of another type"
}

// unknownPath finds where in body a key names no field of t, as the
// dotted path a client wrote ("options.lag_threshold_seconds"): the
// decoder names only the key.
func unknownPath(body []byte, t reflect.Type) string {
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	return unknownIn(doc, t, "")
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// pathJoin is the path of key k in the object at path at.
func pathJoin(at, k string) string {
	if !plainKey.MatchString(k) {
		k = strconv.Quote(k) // an empty key, or one with dots or spaces, stays readable in a path
	}
	if at == "" {
		return k
	}
	return at + "." + k
}

// repeatedKey finds a key given twice in one object of body, as its path
// ("" if none is).
func repeatedKey(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	var walk func(at string) string
	walk = func(at string) string {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				k, ok := kt.(string)
				if err != nil || !ok {
					return ""
				}
				if seen[k] {
					return pathJoin(at, k)
				}
				seen[k] = true
				if p := walk(pathJoin(at, k)); p != "" {
					return p
				}
			}
			_, _ = dec.Token()
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if p := walk(fmt.Sprintf("%s[%d]", at, i)); p != "" {
					return p
				}
			}
			_, _ = dec.Token()
		}
		return ""
	}
	return walk("")
}

func unknownIn(doc any, t reflect.Type, at string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	join := func(k string) string { return pathJoin(at, k) }
	switch t.Kind() {
	case reflect.Struct:
		obj, _ := doc.(map[string]any)
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				return join(k)
			}
			if p := unknownIn(obj[k], ft, join(k)); p != "" {
				return p
			}
		}
	case reflect.Map:
		obj, _ := doc.(map[string]any)
		for k, val := range obj {
			if p := unknownIn(val, t.Elem(), join(k)); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		list, _ := doc.([]any)
		for i, item := range list {
			if p := unknownIn(item, t.Elem(), fmt.Sprintf("%s[%d]", at, i)); p != "" {
				return p
			}
		}
	}
	return ""
}

// jsonFields are a struct's fields by their JSON names, those of
// embedded structs included.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
			continue
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			for k, ft := range jsonFields(f.Type) {
				out[k] = ft
			}
			continue
		case !f.IsExported():
			continue
		case name == "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
