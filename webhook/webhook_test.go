package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/hookrelay/hookrelay/webhook"
)

// reference computes the signature the contract describes, independently of the package.
func reference(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

var signCases = []struct {
	secret string
	body   string
}{
	{"abc123-abc2-cde1-1234-xyz123456", `{"type":"delivery-status","destinationNumber":"+15555550123","messageId":12,"status":"delivered"}`},
	{"abc123-abc2-cde1-1234-xyz123456", ``},
	{"s", `{}`},
	{"sécret-🔑", `{"message":"héllo"}`},
	{strings.Repeat("k", 1024), strings.Repeat("b", 100_000)}, // key longer than a SHA-256 block
}

func TestSignKnownAnswer(t *testing.T) {
	// RFC 4231, test case 2.
	const want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got := webhook.Sign("Jefe", []byte("what do ya want for nothing?")); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if got := webhook.NewSigner("Jefe").Sign([]byte("what do ya want for nothing?")); got != want {
		t.Fatalf("Signer.Sign = %s, want %s", got, want)
	}
	for _, tc := range signCases {
		want := reference(tc.secret, []byte(tc.body))
		if got := webhook.Sign(tc.secret, []byte(tc.body)); got != want {
			t.Errorf("Sign(%.20q, %.20q) = %s, want %s", tc.secret, tc.body, got, want)
		}
		if got := webhook.NewSigner(tc.secret).Sign([]byte(tc.body)); got != want {
			t.Errorf("Signer(%.20q).Sign(%.20q) = %s, want %s", tc.secret, tc.body, got, want)
		}
	}
}

// TestSignerEveryLength checks the Signer against crypto/hmac for keys shorter than, as long
// as and longer than a SHA-256 block, and bodies that end inside, at and past block bounds.
func TestSignerEveryLength(t *testing.T) {
	for k := 0; k <= 2*sha256.BlockSize+1; k++ {
		secret := strings.Repeat("k", k)
		s := webhook.NewSigner(secret)
		for _, n := range []int{0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000} {
			body := bytes.Repeat([]byte{byte(n)}, n)
			if got, want := s.Sign(body), reference(secret, body); got != want {
				t.Fatalf("key of %d bytes, body of %d: Sign = %s, want %s", k, n, got, want)
			}
		}
	}
}

func TestSignerReuseAndConcurrency(t *testing.T) {
	const secret = "abc123-abc2-cde1-1234-xyz123456"
	s := webhook.NewSigner(secret)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				body := []byte(fmt.Sprintf(`{"goroutine":%d,"i":%d}`, g, i))
				if got, want := s.Sign(body), reference(secret, body); got != want {
					errs <- fmt.Sprintf("Sign(%s) = %s, want %s", body, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestVerify(t *testing.T) {
	const secret = "abc123-abc2-cde1-1234-xyz123456"
	body := []byte(`{"type":"delivery-status","messageId":12,"status":"delivered"}`)
	good := reference(secret, body)
	raw, _ := hex.DecodeString(good)
	tests := []struct {
		name      string
		secret    string
		body      []byte
		signature string
		ok        bool
	}{
		{"valid", secret, body, good, true},
		{"upper-case hex", secret, body, strings.ToUpper(good), true},
		{"mixed-case hex", secret, body, strings.ToUpper(good[:10]) + good[10:], true},
		{"empty body", secret, nil, reference(secret, nil), true},
		{"wrong secret", "abc123-abc2-cde1-1234-xyz123457", body, good, false},
		{"tampered body", secret, append(bytes.Clone(body[:len(body)-1]), ' ', '}'), good, false},
		{"one bit flipped", secret, body, good[:63] + string(good[63]^1), false},
		{"empty signature", secret, body, "", false},
		{"truncated", secret, body, good[:62], false},
		{"extra character", secret, body, good + "0", false},
		{"not hex", secret, body, "zz" + good[2:], false},
		{"prefixed", secret, body, "sha256=" + good, false},
		{"surrounding space", secret, body, " " + good, false},
		{"base64 of the right MAC", secret, body, base64.StdEncoding.EncodeToString(raw), false},
		{"empty secret never verifies", "", body, reference("", body), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(tc.secret, tc.body, tc.signature)
			if tc.ok && err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
			if !tc.ok && !errors.Is(err, webhook.ErrInvalidSignature) {
				t.Fatalf("Verify = %v, want ErrInvalidSignature", err)
			}
		})
	}
}

// recorder is a next handler that remembers what it was given.
type recorder struct {
	called        bool
	body          []byte
	contentLength int64
	again         []byte // the body read through GetBody
}

func (h *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.called = true
	h.body, _ = io.ReadAll(r.Body)
	h.contentLength = r.ContentLength
	if r.GetBody != nil {
		rc, _ := r.GetBody()
		h.again, _ = io.ReadAll(rc)
	}
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "handled")
}

func TestMiddleware(t *testing.T) {
	const secret = "abc123-abc2-cde1-1234-xyz123456"
	body := []byte(`{"type":"message-reply","fromNumber":"+15555550123","toNumber":"+15555550100","message":"YES"}`)
	big := bytes.Repeat([]byte("x"), webhook.MaxBodySize)
	tests := []struct {
		name       string
		body       []byte
		signature  string // "" leaves the header out
		wantStatus int
	}{
		{"valid", body, reference(secret, body), http.StatusOK},
		{"valid upper-case", body, strings.ToUpper(reference(secret, body)), http.StatusOK},
		{"valid empty body", []byte{}, reference(secret, nil), http.StatusOK},
		{"exactly MaxBodySize", big, reference(secret, big), http.StatusOK},
		{"missing signature", body, "", http.StatusUnauthorized},
		{"wrong secret", body, reference("other", body), http.StatusUnauthorized},
		{"tampered body", append(bytes.Clone(body), ' '), reference(secret, body), http.StatusUnauthorized},
		{"garbage signature", body, "nope", http.StatusUnauthorized},
		{"over MaxBodySize", append(bytes.Clone(big), 'x'), reference(secret, append(bytes.Clone(big), 'x')), http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := new(recorder)
			req := httptest.NewRequest(http.MethodPost, "/hooks", bytes.NewReader(tc.body))
			if tc.signature != "" {
				req.Header.Set(webhook.SignatureHeader, tc.signature)
			}
			rec := httptest.NewRecorder()
			webhook.Middleware(secret, next).ServeHTTP(rec, req)

			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantStatus != http.StatusOK {
				if next.called {
					t.Fatal("next was called for a rejected request")
				}
				return
			}
			if !next.called {
				t.Fatal("next was not called")
			}
			if !bytes.Equal(next.body, tc.body) || !bytes.Equal(next.again, tc.body) {
				t.Fatalf("next read %d bytes (GetBody %d), want the %d sent", len(next.body), len(next.again), len(tc.body))
			}
			if next.contentLength != int64(len(tc.body)) {
				t.Fatalf("next saw ContentLength %d, want %d", next.contentLength, len(tc.body))
			}
			if rec.Body.String() != "handled" {
				t.Fatalf("response body = %q, want next's", rec.Body)
			}
		})
	}
}

// TestMiddlewareServer runs the middleware behind a real server, where a chunked body has
// no Content-Length and only reading it reveals its size.
func TestMiddlewareServer(t *testing.T) {
	const secret = "abc123-abc2-cde1-1234-xyz123456"
	next := new(recorder)
	srv := httptest.NewServer(webhook.Middleware(secret, next))
	defer srv.Close()

	post := func(body []byte, chunked bool, signature string) int {
		t.Helper()
		var r io.Reader = bytes.NewReader(body)
		if chunked {
			r = io.MultiReader(r) // hides the length, so the client sends chunks
		}
		req, err := http.NewRequest(http.MethodPost, srv.URL, r)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if signature != "" {
			req.Header.Set(webhook.SignatureHeader, signature)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	body := []byte(`{"type":"number-opt-in","number":"+15555550123","optInType":"keyword"}`)
	for _, chunked := range []bool{false, true} {
		next.called = false
		if got := post(body, chunked, webhook.Sign(secret, body)); got != http.StatusOK {
			t.Fatalf("chunked=%v: valid delivery answered %d", chunked, got)
		}
		if !next.called || !bytes.Equal(next.body, body) {
			t.Fatalf("chunked=%v: next got %q, want %q", chunked, next.body, body)
		}

		next.called = false
		if got := post(body, chunked, ""); got != http.StatusUnauthorized || next.called {
			t.Fatalf("chunked=%v: unsigned delivery answered %d (next called: %v), want 401", chunked, got, next.called)
		}

		huge := bytes.Repeat([]byte(" "), webhook.MaxBodySize+1)
		if got := post(huge, chunked, webhook.Sign(secret, huge)); got != http.StatusRequestEntityTooLarge || next.called {
			t.Fatalf("chunked=%v: oversized delivery answered %d (next called: %v), want 413", chunked, got, next.called)
		}
	}
}

func TestMiddlewarePanicsOnEmptySecret(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Middleware with an empty secret did not panic")
		}
	}()
	webhook.Middleware("", http.NotFoundHandler())
}

func TestMiddlewareNilBody(t *testing.T) {
	const secret = "s"
	next := new(recorder)
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Body = nil
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(secret, nil))
	rec := httptest.NewRecorder()
	webhook.Middleware(secret, next).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !next.called || len(next.body) != 0 {
		t.Fatalf("status %d, next called %v with %q; want 200 and an empty body", rec.Code, next.called, next.body)
	}
}

var benchBody = bytes.Repeat([]byte(`{"k":"v"}`), 1024/9+1)[:1024]

func BenchmarkSign(b *testing.B) {
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		webhook.Sign("abc123-abc2-cde1-1234-xyz123456", benchBody)
	}
}

func BenchmarkSignerSign(b *testing.B) {
	s := webhook.NewSigner("abc123-abc2-cde1-1234-xyz123456")
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		s.Sign(benchBody)
	}
}

// BenchmarkSignerMany signs with 10,000 Signers in turn and collects garbage after each round,
// as a busy process does: the case of many webhooks with few deliveries each.
func BenchmarkSignerMany(b *testing.B) {
	signers := make([]*webhook.Signer, 10_000)
	for i := range signers {
		signers[i] = webhook.NewSigner(fmt.Sprintf("secret-%d", i))
	}
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		signers[i].Sign(benchBody)
		if i++; i == len(signers) {
			i = 0
			b.StopTimer()
			runtime.GC()
			b.StartTimer()
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	const secret = "abc123-abc2-cde1-1234-xyz123456"
	sig := webhook.Sign(secret, benchBody)
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if webhook.Verify(secret, benchBody, sig) != nil {
			b.Fatal("signature did not verify")
		}
	}
}
