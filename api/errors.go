package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/zdm-io/zdm/domain"
)

// Error is the API's one coded error: an HTTP status, a stable code, a
// message for people, and the request field it is about, if any.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

type errorBody struct {
	Error *Error `json:"error"`
}

// classify maps an error from anywhere below to an API error.
func classify(err error) *Error {
	var (
		apiErr *Error
		ve     *domain.ValidationError
		le     *domain.LagError
		be     *domain.BusyError
		he     *echo.HTTPError
	)
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.As(err, &ve) && errors.Is(err, domain.ErrClusterLocked):
		return &Error{Status: http.StatusConflict, Code: "cluster_locked", Field: ve.Field, Message: ve.Error()}
	case errors.As(err, &ve):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: ve.Field, Message: ve.Error()}
	case errors.Is(err, domain.ErrConfirmationRequired):
		return &Error{Status: http.StatusBadRequest, Code: "confirmation_required", Field: "confirm_writes_stopped",
			Message: "confirm_writes_stopped must be true: stop writing to the source cluster first"}
	case errors.Is(err, domain.ErrCrossOrganization):
		return &Error{Status: http.StatusBadRequest, Code: "cross_organization", Field: "target.organization", Message: err.Error()}
	case errors.Is(err, domain.ErrForbidden):
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: err.Error()}
	case errors.Is(err, domain.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: noSuchResource}
	case errors.Is(err, domain.ErrCommandReused):
		return &Error{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused", Field: "Idempotency-Key", Message: "this Idempotency-Key was used for another request"}
	case errors.As(err, &le):
		return &Error{Status: http.StatusConflict, Code: "lag_above_threshold", Message: le.Error()}
	case errors.As(err, &be):
		return &Error{Status: http.StatusConflict, Code: "source_busy", Message: be.Error()}
	case errors.Is(err, domain.ErrListenTaken):
		return &Error{Status: http.StatusConflict, Code: "proxy_listen_in_use", Field: "proxy_listen", Message: err.Error()}
	case errors.Is(err, domain.ErrClusterLocked):
		return &Error{Status: http.StatusConflict, Code: "cluster_locked", Message: err.Error()}
	case errors.Is(err, domain.ErrClusterExists):
		// Only a keyed registration can meet its own cluster: a retry
		// whose first answer is no longer kept.
		return &Error{Status: http.StatusConflict, Code: "cluster_exists", Field: "Idempotency-Key",
			Message: "this Idempotency-Key registered a cluster before, whose answer is no longer kept: find it with GET /v1/clusters, or use a new key"}
	case errors.Is(err, domain.ErrSyncTimeLimit):
		return &Error{Status: http.StatusConflict, Code: "sync_time_limit", Message: err.Error()}
	case errors.Is(err, domain.ErrTerminal):
		return &Error{Status: http.StatusConflict, Code: "migration_ended", Message: err.Error()}
	case errors.Is(err, domain.ErrInvalidTransition):
		return &Error{Status: http.StatusConflict, Code: "invalid_transition", Message: err.Error()}
	case errors.Is(err, domain.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: "the migration was changed by another request; reload and retry"}
	case errors.Is(err, domain.ErrStoreUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
			Message: "zdm's event store (NATS) is unreachable or full; the request may not have been recorded: retry it, with the same Idempotency-Key, once NATS is back"}
	case errors.As(err, &he):
		return &Error{Status: he.Code, Code: strings.ReplaceAll(strings.ToLower(http.StatusText(he.Code)), " ", "_"), Message: fmt.Sprint(he.Message)}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; see the zdmd log"}
}

const noSuchResource = "no such resource"

// errorHandler is the server's only error handler: every error leaves as
// JSON {"error":{"code","message"}}.
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		e := classify(err)
		if e.Code == "not_found" && e.Message == noSuchResource && c.Param("id") != "" {
			// The route names what was not found, as GET on it does.
			kind := "cluster"
			if strings.HasPrefix(c.Path(), "/v1/migrations/") {
				kind = "migration"
			}
			e = &Error{Status: e.Status, Code: e.Code, Message: "no " + kind + " " + c.Param("id")}
		}
		if e.Status >= 500 {
			logger.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
		}
		_ = c.JSON(e.Status, errorBody{Error: e})
	}
}
