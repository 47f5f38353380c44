package webhook

import (
	"bytes"
	"io"
	"net/http"
)

// MaxBodySize bounds what Middleware reads. hookrelay's event data is at most 256 KiB, so
// a larger body is not a delivery.
const MaxBodySize = 1 << 20

// Middleware verifies the signature of each request before calling next. It reads the body
// (at most MaxBodySize bytes; a larger body is answered 413), checks its X-Signature
// against secret, and hands next the request with the same body, ready to be read again.
// A request with a missing or wrong signature is answered 401 and next is not called.
//
// Middleware panics if secret is empty, so that a missing configuration fails at start-up
// instead of turning verification off.
func Middleware(secret string, next http.Handler) http.Handler {
	if secret == "" {
		panic("webhook: Middleware called with an empty secret")
	}
	if next == nil {
		panic("webhook: Middleware called with a nil handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signature := r.Header.Get(SignatureHeader)
		if signature == "" {
			http.Error(w, "missing "+SignatureHeader+" header", http.StatusUnauthorized)
			return
		}
		if r.ContentLength > MaxBodySize {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		var body []byte
		var err error
		if r.Body != nil { // a server request always has one; a hand-made one may not
			body, err = io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
		}
		if err != nil {
			http.Error(w, "cannot read request body", http.StatusBadRequest)
			return
		}
		if len(body) > MaxBodySize {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if Verify(secret, body, signature) != nil {
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		// Handlers must not modify the request they are given, so next gets a copy.
		r2 := r.WithContext(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.ContentLength = int64(len(body))
		r2.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		}
		next.ServeHTTP(w, r2)
	})
}
