// Package apikey makes and checks API keys. A key is 160 random bits behind a prefix that says
// what kind of key it is; only its SHA-256 is stored, which is enough for a secret that random
// (a slow password hash would only slow down every request).
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// Kinds of key, as their prefixes.
const (
	AccountPrefix = "hr_"
	AdminPrefix   = "hra_"
)

// PrefixLen is how many characters of a key are kept in clear to tell keys apart.
const PrefixLen = 10

// New returns a fresh key with the given prefix.
func New(prefix string) string {
	var b [20]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return prefix + hex.EncodeToString(b[:])
}

// Hash is what a store keeps of key.
func Hash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// Prefix is the part of key shown in listings.
func Prefix(key string) string {
	if len(key) < PrefixLen {
		return key
	}
	return key[:PrefixLen]
}

// Equal compares two keys in constant time.
func Equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
