package bench

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hookrelay/hookrelay/internal/event"
)

// layout says which webhooks exist and which of them each event goes to.
//
// Webhooks come in groups of fanout: group g is one (account, event type) — account g % accounts,
// type event.Types[g / accounts] — and event i goes to group i % len(groups), so to exactly
// fanout webhooks: webhook g*fanout+s is slot s of group g.
type layout struct {
	accounts int
	fanout   int
	groups   []group
}

type group struct {
	account int // index, 0-based
	typ     string
}

func newLayout(webhooks, accounts, fanout int) (*layout, error) {
	if fanout < 1 {
		return nil, fmt.Errorf("--fanout must be at least 1")
	}
	if webhooks < fanout || webhooks%fanout != 0 {
		return nil, fmt.Errorf("--webhooks (%d) must be a multiple of --fanout (%d): each event goes to a group of --fanout webhooks", webhooks, fanout)
	}
	g := webhooks / fanout
	types := len(event.Types)
	if accounts == 0 {
		accounts = (g + types - 1) / types
	}
	if accounts > g || g > types*accounts {
		return nil, fmt.Errorf("--webhooks %d with --fanout %d make %d groups of (account, event type); an account holds 1 to %d of them, so --accounts must be %d to %d (got %d)",
			webhooks, fanout, g, types, (g+types-1)/types, g, accounts)
	}
	l := &layout{accounts: accounts, fanout: fanout, groups: make([]group, g)}
	for i := range l.groups {
		l.groups[i] = group{account: i % accounts, typ: event.Types[i/accounts]}
	}
	return l, nil
}

func (l *layout) webhooks() int { return len(l.groups) * l.fanout }

// group of event i.
func (l *layout) groupOf(i int) int { return i % len(l.groups) }

// prefix is how the body of every event of type typ begins; the event's index follows it.
func bodyPrefix(typ string) string { return `{"type":"` + typ + `","benchEvent":` }

// appendBody appends the data of event i — also the exact body its deliveries carry: compact,
// "type" first, so the server's normalisation leaves it as is — padded to about payload bytes.
func (l *layout) appendBody(dst []byte, i, payload int) []byte {
	start := len(dst)
	typ := l.groups[l.groupOf(i)].typ
	dst = append(dst, bodyPrefix(typ)...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	switch typ {
	case event.DeliveryStatus:
		dst = append(dst, `,"destinationNumber":"+15550100","messageId":`...)
		dst = strconv.AppendInt(dst, int64(i), 10)
		dst = append(dst, `,"status":"delivered","tags":{"campaign":"bench"}`...)
	case event.MessageSend:
		dst = append(dst, `,"messageId":`...)
		dst = strconv.AppendInt(dst, int64(i), 10)
		dst = append(dst, `,"destinationNumber":"+15550100","message":"bench message"`...)
	case event.MessageReply:
		dst = append(dst, `,"fromNumber":"+15550100","toNumber":"+15550199","message":"bench reply","replyId":`...)
		dst = strconv.AppendInt(dst, int64(i), 10)
	case event.NumberOptIn:
		dst = append(dst, `,"number":"+15550100","optInType":"keyword"`...)
	}
	const padEnvelope = len(`,"pad":""}`)
	if n := payload - (len(dst) - start) - padEnvelope; n > 0 {
		dst = append(dst, `,"pad":"`...)
		dst = append(dst, padding[:n]...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

var padding = strings.Repeat("x", event.MaxDataSize)

// eventIndex reads the index of the event from a body of type typ; -1 when it has none.
func eventIndex(body []byte, typ string) int {
	p := bodyPrefix(typ)
	if len(body) <= len(p) || string(body[:len(p)]) != p {
		return -1
	}
	n := 0
	k := len(p)
	for ; k < len(body) && k < len(p)+10 && body[k] >= '0' && body[k] <= '9'; k++ {
		n = n*10 + int(body[k]-'0')
	}
	if k == len(p) {
		return -1
	}
	return n
}
