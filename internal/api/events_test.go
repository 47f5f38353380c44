package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/internal/store"
)

// checkBatchAnswer checks that appendBatchAnswer writes what writeJSON does.
func checkBatchAnswer(t *testing.T, msg string, b Batch) {
	t.Helper()
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusAccepted, envelope{Message: msg, Data: b})
	want := rec.Body.Bytes()
	if got := appendBatchAnswer(nil, msg, b); !bytes.Equal(got, want) {
		t.Fatalf("message %q, batch %+v:\n got %s\nwant %s", msg, b, got, want)
	}
}

// answerStrings are strings that encoding/json escapes, or might.
var answerStrings = []string{
	"", "a", "Events processed: 1 accepted, 0 duplicate, 0 rejected.",
	`"`, `\`, `a"b\c`, "/", "<>&", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "é", "\u2028\u2029", "\ufffd",
	"\xff", "a\xc3", "\xed\xa0\x80", "😀",
	`events[3]: unknown field "\xff"; allowed fields: accountId, event, data, idempotencyKey`,
}

func TestBatchAnswer(t *testing.T) {
	zero, one, big := 0, 1, -1<<63
	for _, s := range answerStrings {
		checkBatchAnswer(t, s, Batch{Results: []BatchResult{{Status: 400, Message: s}}})
		checkBatchAnswer(t, "m", Batch{Accepted: 1, Duplicates: 2, Rejected: 3, Results: []BatchResult{
			{Status: 202, ID: s, Event: s, Deliveries: &one},
			{Status: 200, ID: "id", Event: "message-send", Deliveries: &zero, Message: s},
			{Status: 404, Deliveries: &big, Message: s},
			{},
		}})
	}
	checkBatchAnswer(t, "m", Batch{})
	checkBatchAnswer(t, "", Batch{Results: []BatchResult{}})
}

func FuzzBatchAnswer(f *testing.F) {
	for _, s := range answerStrings {
		f.Add(s, s, 202, 1, true)
	}
	f.Fuzz(func(t *testing.T, msg, s string, status, deliveries int, hasDeliveries bool) {
		r := BatchResult{Status: status, ID: s, Event: s, Message: s}
		if hasDeliveries {
			r.Deliveries = &deliveries
		}
		checkBatchAnswer(t, msg, Batch{Accepted: status, Duplicates: -status, Rejected: deliveries, Results: []BatchResult{r, r}})
	})
}

// benchBatch returns a batch body of n realistic events.
func benchBatch(n int) []byte {
	message := strings.Repeat("Your code is 123456. ", 10)
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"accountId":1,"event":"message-send","data":{"messageId":%d,`+
			`"destinationNumber":"+15550001111","message":%q,"tags":{"a":"b"}}}`, 123+i, message)
	}
	return []byte(batchOf(items...))
}

// publishStore is a store that accepts every event at once, so that a benchmark of the
// handler measures the handler.
type publishStore struct {
	store.Store
}

func (publishStore) Publish(_ context.Context, p store.PublishParams) ([]store.Published, error) {
	res := make([]store.Published, len(p.Events))
	for i, e := range p.Events {
		res[i] = store.Published{EventID: e.ID, Type: e.Type, Deliveries: 1}
	}
	return res, nil
}

// BenchmarkCreateEvents measures POST /v3/events/batch with 100 events, from the request to
// the answer, less the store.
func BenchmarkCreateEvents(b *testing.B) {
	body := benchBatch(100)
	s := New(Config{Store: publishStore{}, AdminKey: "bench-admin-key"})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/v3/events/batch", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer bench-admin-key")
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
