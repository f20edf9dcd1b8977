package restgate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// The codes Milvus's REST handler answers bad input with.
const (
	codeOK           = 200
	codeNotJSON      = 1801
	codeMissingParam = 1802
	codeBadData      = 1804
	codeServer       = 65535
)

// apiError is an answer with a code other than 200.
type apiError struct {
	code int32
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func badData(format string, args ...any) error {
	return &apiError{code: codeBadData, msg: "fail to deal the insert data, error: " + fmt.Sprintf(format, args...)}
}

// gate answers the calls it carries with the endpoint's Milvus service.
type gate struct {
	milvus milvuspb.MilvusServiceClient
}

// New returns the REST handler of an endpoint: cc reaches the endpoint,
// notCarried answers every call that is not one of the v1 calls.
func New(cc *grpc.ClientConn, notCarried http.Handler) http.Handler {
	g := &gate{milvus: milvuspb.NewMilvusServiceClient(cc)}
	mux := http.NewServeMux()
	for route, h := range map[string]func(context.Context, *http.Request) (any, error){
		"GET /v1/vector/collections":          g.list,
		"POST /v1/vector/collections/create":  g.create,
		"GET /v1/vector/collections/describe": g.describe,
		"POST /v1/vector/collections/drop":    g.drop,
		"POST /v1/vector/insert":              g.insert,
		"POST /v1/vector/upsert":              g.upsert,
		"POST /v1/vector/delete":              g.delete,
		"POST /v1/vector/query":               g.query,
		"POST /v1/vector/get":                 g.get,
		"POST /v1/vector/search":              g.search,
	} {
		mux.Handle(route, answer(h))
	}
	mux.Handle("/", notCarried)
	return mux
}

// answer runs h with the caller's credentials and writes its result the
// way Milvus does: HTTP 200 and a JSON code, with data or a message.
func answer(h func(context.Context, *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := metadata.NewOutgoingContext(r.Context(), credentials(r))
		data, err := h(ctx, r)
		body := map[string]any{"code": codeOK, "data": data}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				ae = &apiError{code: codeServer, msg: err.Error()}
				if s, ok := status.FromError(err); ok {
					ae.msg = s.Message()
				}
			}
			body = map[string]any{"code": ae.code, "message": ae.msg}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(body)
	}
}

// credentials turns the HTTP authorization Milvus's REST API takes (basic,
// or a bearer token "user:password" or API key) into the gRPC metadata an
// SDK sends.
func credentials(r *http.Request) metadata.MD {
	md := metadata.MD{}
	if user, pass, ok := r.BasicAuth(); ok {
		md.Set("authorization", base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	} else if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && token != "" {
		md.Set("authorization", base64.StdEncoding.EncodeToString([]byte(token)))
	}
	return md
}

// decode reads a POST body into v, numbers kept exact.
func decode(r *http.Request, v any) error {
	d := json.NewDecoder(io.LimitReader(r.Body, milvus.MaxMessage))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return &apiError{code: codeNotJSON, msg: "can only accept json format request, error: " + err.Error()}
	}
	return nil
}

// required names the parameters a call lacks.
func required(names string, missing bool) error {
	if missing {
		return &apiError{code: codeMissingParam, msg: "missing required parameters, required parameters: [" + names + "]"}
	}
	return nil
}

// check turns a Milvus status into an answer's code and message.
func check(s *commonpb.Status, err error) error {
	if err != nil || milvus.StatusOK(s) {
		return err
	}
	code := s.GetCode()
	if code == 0 {
		code = int32(s.GetErrorCode())
	}
	return &apiError{code: code, msg: s.GetReason()}
}

// schemaOf describes a collection.
func (g *gate) schemaOf(ctx context.Context, db, coll string) (*milvuspb.DescribeCollectionResponse, error) {
	r, err := g.milvus.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{DbName: db, CollectionName: coll})
	if err := check(r.GetStatus(), err); err != nil {
		return nil, err
	}
	return r, nil
}
