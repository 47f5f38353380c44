package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/hookrelay/hookrelay/webhook"
)

// A receiver wraps its handler in Middleware; only correctly signed deliveries reach it.
func Example_middleware() {
	secret := "abc123-abc2-cde1-1234-xyz123456" // the webhook's secret, from your configuration

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var data struct {
			Type      string `json:"type"`
			MessageID int64  `json:"messageId"`
			Status    string `json:"status"`
		}
		if err := json.NewDecoder(r.Body).Decode(&data); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Println("event", r.Header.Get(webhook.EventIDHeader), data.Type, data.MessageID, data.Status)
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(webhook.Middleware(secret, handler))
	defer srv.Close()

	// What hookrelay sends.
	body := []byte(`{"type":"delivery-status","destinationNumber":"+15555550123","messageId":1734562,"status":"delivered"}`)
	send := func(signature string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhook.EventIDHeader, "evt_1")
		req.Header.Set(webhook.SignatureHeader, signature)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	send(webhook.Sign(secret, body))
	send(webhook.Sign("a guess", body))

	// Output:
	// event evt_1 delivery-status 1734562 delivered
	// 200 OK
	// 401 Unauthorized
}

func ExampleVerify() {
	secret := "abc123-abc2-cde1-1234-xyz123456"
	body := []byte(`{"type":"number-opt-in","number":"+15555550123","optInType":"keyword"}`)
	signature := webhook.Sign(secret, body) // in a receiver: r.Header.Get(webhook.SignatureHeader)

	fmt.Println(webhook.Verify(secret, body, signature))

	tampered := bytes.Replace(body, []byte("keyword"), []byte("web"), 1)
	fmt.Println(webhook.Verify(secret, tampered, signature))

	// Output:
	// <nil>
	// webhook: invalid signature
}

func ExampleSign() {
	fmt.Println(webhook.Sign("Jefe", []byte("what do ya want for nothing?")))
	// Output: 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843
}
