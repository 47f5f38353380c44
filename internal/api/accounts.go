package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/hookrelay/hookrelay/internal/apikey"
	"github.com/hookrelay/hookrelay/internal/store"
)

// Account is the account object of the API.
type Account struct {
	ID        int64  `json:"id"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
	// APIKey is only present in the answer that created the account.
	APIKey string `json:"apiKey,omitempty"`
}

func accountView(a store.Account) Account {
	return Account{ID: a.ID, Email: a.Email, Name: a.Name, CreatedAt: formatTime(a.CreatedAt), UpdatedAt: formatTime(a.UpdatedAt)}
}

// APIKey is an API key of the API; the key itself only in the answer that created it.
type APIKey struct {
	ID         int64   `json:"id"`
	APIKey     string  `json:"apiKey,omitempty"`
	Prefix     string  `json:"prefix"`
	CreatedAt  string  `json:"createdAt"`
	LastUsedAt *string `json:"lastUsedAt"`
}

func apiKeyView(k store.APIKey) APIKey {
	return APIKey{ID: k.ID, Prefix: k.Prefix, CreatedAt: formatTime(k.CreatedAt), LastUsedAt: optTime(k.LastUsedAt)}
}

const maxNameLen = 200

var accountFields = []string{"email", "name"}

var (
	errAccountEmail = errors.New("email must be a valid email address")
	errAccountName  = fmt.Errorf("name must be a string of at most %d characters", maxNameLen)
)

// validAccountEmail is validEmail without the placeholder of the published example (see
// HiddenEmail): an account's email is where alerts go when a webhook names no usable address,
// so it must be a real one.
func validAccountEmail(s string) bool {
	return validEmail(s) && s != HiddenEmail && s != "[email protected]"
}

// CheckAccount checks an account's email and name as the API does (the CLI uses it).
func CheckAccount(email, name string) error {
	if !validAccountEmail(email) {
		return errAccountEmail
	}
	if utf8.RuneCountInString(name) > maxNameLen {
		return errAccountName
	}
	return nil
}

func applyAccount(o object, a *store.Account) error {
	if o.has("email") {
		v, err := o.str("email")
		if err != nil || !validAccountEmail(v) {
			return errAccountEmail
		}
		a.Email = v
	}
	if o.has("name") {
		v, err := o.str("name")
		if err != nil || utf8.RuneCountInString(v) > maxNameLen {
			return errAccountName
		}
		a.Name = v
	}
	return nil
}

// NewAccount creates an account with its first API key and returns both; the key is shown
// this once. The CLI uses it too.
func NewAccount(ctx context.Context, st store.Store, a store.Account) (store.Account, string, error) {
	key := apikey.New(apikey.AccountPrefix)
	a, _, err := st.CreateAccount(ctx, a, store.NewAPIKey{Prefix: apikey.Prefix(key), Hash: apikey.Hash(key)})
	if err != nil {
		return a, "", err
	}
	return a, key, nil
}

func emailTaken(a store.Account) string {
	return fmt.Sprintf("an account with email %s already exists", a.Email)
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request, _ caller) {
	o, ok := readObject(w, r, accountFields...)
	if !ok {
		return
	}
	if !o.has("email") {
		writeError(w, r, http.StatusBadRequest, "email is required")
		return
	}
	a := store.Account{CreatedAt: s.now()}
	if err := applyAccount(o, &a); err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	a, key, err := NewAccount(r.Context(), s.store, a)
	if err != nil {
		s.storeError(w, r, err, "", emailTaken(a))
		return
	}
	v := accountView(a)
	v.APIKey = key
	writeJSON(w, http.StatusOK, envelope{Message: fmt.Sprintf("Account %d created successfully.", a.ID), Data: v})
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request, _ caller) {
	p, err := page(r)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	accounts, total, err := s.store.ListAccounts(r.Context(), p)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeList(w, accounts, accountView, p, total)
}

func accountNotFound(r *http.Request) string {
	return fmt.Sprintf("account %s not found", r.PathValue("id"))
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request, _ caller) {
	id, ok := pathID(r, "id")
	if !ok {
		writeError(w, r, http.StatusNotFound, accountNotFound(r))
		return
	}
	a, err := s.store.GetAccount(r.Context(), id)
	if err != nil {
		s.storeError(w, r, err, accountNotFound(r), "")
		return
	}
	writeJSON(w, http.StatusOK, envelope{Data: accountView(a)})
}

func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request, _ caller) {
	id, ok := pathID(r, "id")
	if !ok {
		writeError(w, r, http.StatusNotFound, accountNotFound(r))
		return
	}
	o, ok := readObject(w, r, accountFields...)
	if !ok {
		return
	}
	var scratch store.Account
	if err := applyAccount(o, &scratch); err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	now := s.now()
	a, err := s.store.UpdateAccount(r.Context(), id, func(a *store.Account) error {
		a.UpdatedAt = now
		return applyAccount(o, a)
	})
	if err != nil {
		s.storeError(w, r, err, accountNotFound(r), emailTaken(scratch))
		return
	}
	writeJSON(w, http.StatusOK, envelope{Message: fmt.Sprintf("Account %d updated successfully.", a.ID), Data: accountView(a)})
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, _ caller) {
	id, ok := pathID(r, "id")
	if !ok {
		writeError(w, r, http.StatusNotFound, accountNotFound(r))
		return
	}
	key := apikey.New(apikey.AccountPrefix)
	k, err := s.store.CreateAPIKey(r.Context(), id, store.NewAPIKey{Prefix: apikey.Prefix(key), Hash: apikey.Hash(key)}, s.now())
	if err != nil {
		s.storeError(w, r, err, accountNotFound(r), "")
		return
	}
	v := apiKeyView(k)
	v.APIKey = key
	writeJSON(w, http.StatusOK, envelope{Message: fmt.Sprintf("API key %d created successfully.", k.ID), Data: v})
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request, _ caller) {
	id, ok := pathID(r, "id")
	if !ok {
		writeError(w, r, http.StatusNotFound, accountNotFound(r))
		return
	}
	p, err := page(r)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	keys, err := s.store.ListAPIKeys(r.Context(), id)
	if err != nil {
		s.storeError(w, r, err, accountNotFound(r), "")
		return
	}
	total := len(keys)
	keys = keys[min(p.Offset(), total):min(p.Offset()+p.Size, total)]
	writeList(w, keys, apiKeyView, p, total)
}

func (s *Server) deleteAPIKey(w http.ResponseWriter, r *http.Request, _ caller) {
	id, ok1 := pathID(r, "id")
	keyID, ok2 := pathID(r, "keyId")
	notFound := fmt.Sprintf("API key %s of account %s not found", r.PathValue("keyId"), r.PathValue("id"))
	if !ok1 || !ok2 {
		writeError(w, r, http.StatusNotFound, notFound)
		return
	}
	if err := s.store.DeleteAPIKey(r.Context(), id, keyID); err != nil {
		s.storeError(w, r, err, notFound, "")
		return
	}
	writeJSON(w, http.StatusOK, envelope{Message: fmt.Sprintf("API key %d deleted successfully.", keyID)})
}
