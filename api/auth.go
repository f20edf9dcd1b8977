package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/zdm-io/zdm/domain"
)

// Tokens maps the SHA-256 (hex) of each API token to its principal, so the
// tokens themselves need not be kept in memory or in the config file.
type Tokens map[string]domain.Principal

// HashToken returns the key a token is found under.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

const principalKey = "zdm.principal"

// authenticate requires "Authorization: Bearer TOKEN" on every /v1 route.
func authenticate(tokens Tokens) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Request().Header.Get(echo.HeaderAuthorization)
			token, ok := strings.CutPrefix(h, "Bearer ")
			if !ok || token == "" {
				return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "send Authorization: Bearer <token>"}
			}
			p, ok := tokens[HashToken(strings.TrimSpace(token))]
			if !ok {
				return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "unknown token"}
			}
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

// requireScrape lets only principals that may read /metrics through.
func requireScrape(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !principal(c).CanScrape() {
			return &Error{Status: http.StatusForbidden, Code: "forbidden",
				Message: "/metrics needs a token of role metrics (a scrape token) or admin: it names every organization's migrations"}
		}
		return next(c)
	}
}

// mayCommand refuses a command to a role that drives nothing (a viewer,
// a scrape token) before its body is read: such a caller is told it may
// not, whatever it sent.
func mayCommand(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := principal(c).MayDriveAny(); err != nil {
			return err
		}
		return next(c)
	}
}

// mayRead refuses a read of the registry or the migrations to a role
// that reads neither (a scrape token).
func mayRead(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := principal(c).MayReadAny(); err != nil {
			return err
		}
		return next(c)
	}
}

// drivable answers a command on one migration or cluster, before its body
// is read, as the command itself would: 404 for one the caller may not
// see, 403 for one it may see but not drive. scope finds the aggregate's
// organization and project, or answers 404.
func drivable(kind string, scope func(echo.Context) (org, project string, err error)) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			org, project, err := scope(c)
			if err != nil {
				return err
			}
			if err := principal(c).AuthorizeOn(kind, c.Param("id"), org, project); err != nil {
				return err
			}
			return next(c)
		}
	}
}

func principal(c echo.Context) domain.Principal {
	p, _ := c.Get(principalKey).(domain.Principal)
	return p
}
