package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding"
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

// A Signer signs bodies with one secret. It computes the keyed HMAC's starting states once
// (the two SHA-256 blocks of the padded key) and signs each body from them, which saves the key
// setup that Sign pays on every call. Its working state is a plain SHA-256 digest, the same
// whatever the key, taken from a pool that every Signer shares: a process with thousands of
// webhooks keeps no state per webhook beyond two small snapshots, and a webhook that sends
// rarely finds a warm digest anyway. A Signer is safe for concurrent use.
type Signer struct {
	inner, outer []byte // SHA-256 states after the key XOR ipad and XOR opad blocks (RFC 2104)
}

// signState is a SHA-256 digest with room for its output, reused across calls and Signers.
type signState struct {
	h   hash.Hash
	sum [sha256.Size]byte
	hex [2 * sha256.Size]byte
}

var signStates = sync.Pool{New: func() any { return &signState{h: sha256.New()} }}

// NewSigner returns a Signer for secret.
func NewSigner(secret string) *Signer {
	key := []byte(secret)
	if len(key) > sha256.BlockSize {
		k := sha256.Sum256(key)
		key = k[:]
	}
	var ipad, opad [sha256.BlockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	return &Signer{inner: snapshot(ipad[:]), outer: snapshot(opad[:])}
}

// snapshot is the marshalled state of a SHA-256 digest that has hashed block.
func snapshot(block []byte) []byte {
	h := sha256.New()
	h.Write(block)
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("webhook: SHA-256 state cannot be saved: " + err.Error())
	}
	return state
}

// restore sets h to a state snapshot made.
func restore(h hash.Hash, state []byte) {
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		panic("webhook: SHA-256 state cannot be restored: " + err.Error())
	}
}

// Sign returns the X-Signature value for body; it equals Sign(secret, body).
func (s *Signer) Sign(body []byte) string {
	st := signStates.Get().(*signState)
	// HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)), from the states after each pad.
	restore(st.h, s.inner)
	st.h.Write(body)
	st.h.Sum(st.sum[:0])
	restore(st.h, s.outer)
	st.h.Write(st.sum[:])
	st.h.Sum(st.sum[:0])
	hex.Encode(st.hex[:], st.sum[:])
	sig := string(st.hex[:])
	signStates.Put(st)
	return sig
}
