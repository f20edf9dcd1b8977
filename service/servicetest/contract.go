package servicetest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/zdm-io/zdm/api"
)

// contract is api/openapi.yaml, loaded once, with a router that finds the
// operation of a request.
var contract = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	// Served on whatever loopback port the test picked.
	doc.Servers = nil
	return gorillamux.NewRouter(doc)
})

// conforms fails the test when a response the server sent does not
// conform to the OpenAPI document: its status must be documented for the
// operation, and its body must match the documented schema; and when the
// server accepted a request the document calls invalid. A request the
// document has no operation for (an unknown path, a method a path does
// not take) is not checked: its answer is the generic 404 or 405.
func conforms(t testing.TB, req *http.Request, body []byte, resp *http.Response, respBody []byte) {
	t.Helper()
	router, err := contract()
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return
	}
	reqIn := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if resp.StatusCode < 300 {
		// An API fuzzer working from the document sends what it calls
		// invalid and expects a refusal.
		req.Body = io.NopCloser(bytes.NewReader(body))
		if err := openapi3filter.ValidateRequest(context.Background(), reqIn); err != nil {
			t.Errorf("%s %s was accepted (%d) though api/openapi.yaml calls the request invalid: %v\nbody: %.300s", req.Method, req.URL.Path, resp.StatusCode, err, body)
		}
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqIn,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(respBody)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s answered %d, which api/openapi.yaml does not describe: %v\nbody: %.300s", req.Method, req.URL.Path, resp.StatusCode, err, respBody)
	}
}
