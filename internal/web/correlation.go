package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// CorrelationHeader is the response header carrying the request's
// correlation id, so that a person quoting it to support, a log line and a
// browser trace can be matched.
const CorrelationHeader = "X-Correlation-Id"

type correlationKey struct{}

// WithCorrelationID gives every request a fresh random 128-bit correlation
// id: stored in the request context (read it with CorrelationID) and sent
// back in the X-Correlation-Id response header.
//
// An incoming X-Correlation-Id is deliberately ignored: the broker faces the
// Internet, and an id chosen by the client could be used to forge or mix up
// log trails.
func WithCorrelationID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := newCorrelationID()
		w.Header().Set(CorrelationHeader, id)
		h.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), correlationKey{}, id)))
	})
}

// CorrelationID returns the correlation id WithCorrelationID stored in ctx,
// or "" when there is none.
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

// newCorrelationID returns 32 hex digits. crypto/rand.Read cannot fail since
// Go 1.24 (it crashes the program instead), hence no error path.
func newCorrelationID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
