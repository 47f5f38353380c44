package alert

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

// Subject is the alert's subject line, made to be filtered on:
// "[hookrelay] Webhook 11 (delivery-status) is failing".
func Subject(a store.Alert) string {
	what := map[string]string{
		store.AlertFailing:   "is failing",
		store.AlertRecovered: "has recovered",
		store.AlertDisabled:  "was disabled",
	}[a.Kind]
	return fmt.Sprintf("[hookrelay] Webhook %d (%s) %s", a.WebhookID, a.Event, what)
}

// RedactURL is the URL as alerts show it: no user or password, no query or fragment (they
// may hold tokens), so an alert never carries a secret.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid url)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment, u.RawFragment = "", ""
	s := u.String()
	return strings.Replace(s, "?%E2%80%A6", "?…", 1)
}

// view is what the templates show.
type view struct {
	store.Alert
	Subject   string
	Interval  string
	LastIssue string
	Range     string
	EventList string
}

func newView(a store.Alert, interval time.Duration) view {
	v := view{Alert: a, Subject: Subject(a), Interval: interval.String(), EventList: strings.Join(a.Events, ", ")}
	switch {
	case a.LastStatusCode != 0 && a.LastError != "" && a.LastError != fmt.Sprintf("HTTP %d", a.LastStatusCode):
		v.LastIssue = fmt.Sprintf("HTTP %d: %s", a.LastStatusCode, a.LastError)
	case a.LastStatusCode != 0:
		v.LastIssue = fmt.Sprintf("HTTP %d", a.LastStatusCode)
	default:
		v.LastIssue = a.LastError
	}
	if !a.FirstFailureAt.IsZero() {
		v.Range = formatTime(a.FirstFailureAt) + " to " + formatTime(a.LastFailureAt)
	}
	return v
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

const textBody = `{{.Subject}}
{{if eq .Kind "failing"}}
Requests to this webhook are failing.

URL:             {{.URL}}
Failed requests: {{.Failures}}{{if .Range}}
Between:         {{.Range}}{{end}}{{if .LastIssue}}
Last error:      {{.LastIssue}}{{end}}{{if .EventList}}
Event types:     {{.EventList}}{{end}}

Failed deliveries are retried as the webhook's settings say. Further failures are
gathered into one email at most every {{.Interval}}; you will get one email when the
webhook works again.
{{else if eq .Kind "recovered"}}
Requests to this webhook succeed again.

URL:             {{.URL}}{{if .Failures}}
Failures since the last alert: {{.Failures}}{{if .Range}} ({{.Range}}){{end}}{{end}}
{{else}}
This webhook was disabled and receives no deliveries until it is turned back on.

URL:             {{.URL}}
Reason:          {{.Reason}}{{if .Failures}}
Failed requests: {{.Failures}}{{end}}{{if .LastIssue}}
Last error:      {{.LastIssue}}{{end}}

New events for it are recorded as cancelled. Turn it back on with
PATCH /v3/webhooks/{{.WebhookID}} and the body {"status":"active"}.
{{end}}
-- 
hookrelay`

const htmlBody = `<!doctype html>
<html><body style="font-family: sans-serif">
<p><strong>{{.Subject}}</strong></p>
{{if eq .Kind "failing"}}<p>Requests to this webhook are failing.</p>
<table>
<tr><td>URL</td><td><code>{{.URL}}</code></td></tr>
<tr><td>Failed requests</td><td>{{.Failures}}</td></tr>
{{if .Range}}<tr><td>Between</td><td>{{.Range}}</td></tr>{{end}}
{{if .LastIssue}}<tr><td>Last error</td><td>{{.LastIssue}}</td></tr>{{end}}
{{if .EventList}}<tr><td>Event types</td><td>{{.EventList}}</td></tr>{{end}}
</table>
<p>Failed deliveries are retried as the webhook's settings say. Further failures are gathered into one email at most every {{.Interval}}; you will get one email when the webhook works again.</p>
{{else if eq .Kind "recovered"}}<p>Requests to this webhook succeed again.</p>
<table>
<tr><td>URL</td><td><code>{{.URL}}</code></td></tr>
{{if .Failures}}<tr><td>Failures since the last alert</td><td>{{.Failures}}{{if .Range}} ({{.Range}}){{end}}</td></tr>{{end}}
</table>
{{else}}<p>This webhook was disabled and receives no deliveries until it is turned back on.</p>
<table>
<tr><td>URL</td><td><code>{{.URL}}</code></td></tr>
<tr><td>Reason</td><td>{{.Reason}}</td></tr>
{{if .Failures}}<tr><td>Failed requests</td><td>{{.Failures}}</td></tr>{{end}}
{{if .LastIssue}}<tr><td>Last error</td><td>{{.LastIssue}}</td></tr>{{end}}
</table>
<p>New events for it are recorded as cancelled. Turn it back on with <code>PATCH /v3/webhooks/{{.WebhookID}}</code> and the body <code>{"status":"active"}</code>.</p>
{{end}}<p style="color: #666">hookrelay</p>
</body></html>
`

var (
	textTmpl = texttemplate.Must(texttemplate.New("text").Parse(textBody))
	htmlTmpl = htmltemplate.Must(htmltemplate.New("html").Parse(htmlBody))
)

// Render builds the email of an alert.
func Render(a store.Alert, from string, interval time.Duration) (Message, error) {
	v := newView(a, interval)
	var text, html bytes.Buffer
	if err := textTmpl.Execute(&text, v); err != nil {
		return Message{}, fmt.Errorf("render alert %d: %w", a.ID, err)
	}
	if err := htmlTmpl.Execute(&html, v); err != nil {
		return Message{}, fmt.Errorf("render alert %d: %w", a.ID, err)
	}
	return Message{From: from, To: a.Recipient, Subject: v.Subject, Text: text.String(), HTML: html.String()}, nil
}
