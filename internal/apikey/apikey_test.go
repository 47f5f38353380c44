package apikey

import (
	"bytes"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		k := New(AccountPrefix)
		if !strings.HasPrefix(k, AccountPrefix) || len(k) != len(AccountPrefix)+40 {
			t.Fatalf("key %q: want %q and 40 hex digits", k, AccountPrefix)
		}
		if seen[k] {
			t.Fatalf("key %q generated twice", k)
		}
		seen[k] = true
	}
}

func TestHashAndPrefix(t *testing.T) {
	a, b := New(AdminPrefix), New(AdminPrefix)
	if !bytes.Equal(Hash(a), Hash(a)) || bytes.Equal(Hash(a), Hash(b)) || len(Hash(a)) != 32 {
		t.Fatal("Hash must be a stable 32-byte digest that differs between keys")
	}
	if p := Prefix(a); p != a[:PrefixLen] || !strings.HasPrefix(p, AdminPrefix) {
		t.Fatalf("Prefix(%q) = %q", a, p)
	}
	if !Equal(a, a) || Equal(a, b) || Equal(a, "") {
		t.Fatal("Equal must hold only for the same key")
	}
}
