package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"sync"
)

// The headers of a delivery.
const (
	// SignatureHeader holds the lowercase hex HMAC-SHA256 of the body, keyed with the secret.
	SignatureHeader = "X-Signature"
	// EventIDHeader identifies the event; it is the same on every attempt, so a receiver
	// can use it to recognise a repeated delivery.
	EventIDHeader = "X-Event-Id"
	// EventTypeHeader is the event type, such as "delivery-status".
	EventTypeHeader = "X-Event-Type"
	// WebhookIDHeader is the id of the webhook the delivery is for.
	WebhookIDHeader = "X-Webhook-Id"
	// AttemptHeader counts the attempts of this delivery: 1, 2, …
	AttemptHeader = "X-Delivery-Attempt"
)

// ErrInvalidSignature is returned by Verify when the signature does not match the body.
var ErrInvalidSignature = errors.New("webhook: invalid signature")

// Sign returns the X-Signature value for body under secret: the lowercase hex HMAC-SHA256
// of body keyed with the UTF-8 bytes of secret. To sign many bodies with one secret, a
// Signer is cheaper.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether signature is Sign(secret, body). It returns nil if so and
// ErrInvalidSignature otherwise. The hex may be upper or lower case. The comparison takes
// the same time wherever the signatures differ, so it leaks nothing about the expected one.
//
// An empty secret never verifies: hookrelay secrets are never empty, and an unset secret
// (a missing environment variable, say) must not let anyone sign requests.
func Verify(secret string, body []byte, signature string) error {
	if secret == "" || len(signature) != hex.EncodedLen(sha256.Size) {
		return ErrInvalidSignature
	}
	var got [sha256.Size]byte
	if _, err := hex.Decode(got[:], []byte(signature)); err != nil {
		return ErrInvalidSignature
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got[:]) {
		return ErrInvalidSignature
	}
	return nil
}

// A Signer signs bodies with one secret. It keys the HMAC once and reuses it, which
// saves the key setup (two extra SHA-256 blocks and some allocations) that Sign pays on
// every call. A Signer is safe for concurrent use.
type Signer struct {
	pool sync.Pool // of *signState
}

// signState is one keyed HMAC with room for its output, reused across calls.
type signState struct {
	mac hash.Hash
	sum [sha256.Size]byte
	hex [2 * sha256.Size]byte
}

// NewSigner returns a Signer for secret.
func NewSigner(secret string) *Signer {
	key := []byte(secret)
	s := new(Signer)
	s.pool.New = func() any {
		return &signState{mac: hmac.New(sha256.New, key)}
	}
	return s
}

// Sign returns the X-Signature value for body; it equals Sign(secret, body).
func (s *Signer) Sign(body []byte) string {
	st := s.pool.Get().(*signState)
	st.mac.Reset()
	st.mac.Write(body)
	st.mac.Sum(st.sum[:0])
	hex.Encode(st.hex[:], st.sum[:])
	sig := string(st.hex[:])
	s.pool.Put(st)
	return sig
}
