// Package webhook verifies the webhooks hookrelay sends, for receivers written in Go.
//
// Every delivery is an HTTP POST whose body is the event's JSON data. hookrelay signs it: the
// X-Signature header holds the lowercase hex HMAC-SHA256 of the exact body bytes, keyed with
// the webhook's secret (the secret you gave when creating the webhook, as UTF-8 bytes).
// A receiver that recomputes the signature knows the request came from hookrelay and that
// the body was not changed on the way.
//
// Verify the bytes you received, before parsing them: parsing and re-encoding JSON changes
// the bytes and breaks the signature. The simplest way is to wrap your handler in
// Middleware, which answers 401 to any request without a valid signature:
//
//	secret := os.Getenv("HOOKRELAY_WEBHOOK_SECRET")
//	http.Handle("POST /hooks", webhook.Middleware(secret, http.HandlerFunc(handle)))
//
//	func handle(w http.ResponseWriter, r *http.Request) {
//		var data struct {
//			Type      string `json:"type"`
//			MessageID int64  `json:"messageId"`
//			Status    string `json:"status"`
//		}
//		if err := json.NewDecoder(r.Body).Decode(&data); err != nil {
//			http.Error(w, err.Error(), http.StatusBadRequest)
//			return
//		}
//		// Deliveries are at least once: use the X-Event-Id header to skip repeats.
//		// ...
//		w.WriteHeader(http.StatusOK) // only 200 counts as delivered
//	}
//
// Or, with the body already in hand:
//
//	if err := webhook.Verify(secret, body, r.Header.Get(webhook.SignatureHeader)); err != nil {
//		http.Error(w, "invalid signature", http.StatusUnauthorized)
//		return
//	}
//
// Each delivery also carries X-Event-Id (the same on every attempt, so it is the key to
// deduplicate on), X-Event-Type, X-Webhook-Id and X-Delivery-Attempt (1, 2, …).
//
// hookrelay treats only a 200 response as success; anything else is retried according
// to the webhook's settings. Answer quickly and do slow work after responding.
package webhook
