package server_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// email is one message the test SMTP server received.
type email struct {
	From, To string
	Subject  string
	Text     string
	HTML     string
	Raw      string
}

// mailServer is a real SMTP server on 127.0.0.1 that records what it receives. It can be
// started late on its address, to play a mail server that was down.
type mailServer struct {
	addr string
	ln   *heldListener
	srv  *smtp.Server

	mu   sync.Mutex
	got  []email
	errs []error
}

// newMailServer holds an address on which no mail server answers yet; start makes one answer.
func newMailServer(t *testing.T) *mailServer {
	t.Helper()
	ln := holdAddr(t)
	return &mailServer{addr: ln.Addr().String(), ln: ln}
}

// startMailServer returns a mail server that is up.
func startMailServer(t *testing.T) *mailServer {
	m := newMailServer(t)
	m.start(t)
	return m
}

func (m *mailServer) url() string { return "smtp://" + m.addr }

func (m *mailServer) start(t *testing.T) {
	t.Helper()
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{m: m}, nil }))
	s.Domain = "localhost"
	s.AllowInsecureAuth = true
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	m.srv = s
	go s.Serve(m.ln.up())
	t.Cleanup(func() { s.Close() })
}

func (m *mailServer) emails() []email {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]email(nil), m.got...)
}

// waitEmails waits until at least n emails arrived.
func (m *mailServer) waitEmails(t *testing.T, n int, limit time.Duration) []email {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if got := m.emails(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("mail server got %d emails, want %d within %v: %+v", len(m.emails()), n, limit, m.emails())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type mailSession struct {
	m        *mailServer
	from, to string
}

func (s *mailSession) Reset()        {}
func (s *mailSession) Logout() error { return nil }
func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	e, err := parseEmail(raw)
	e.From, e.To = s.from, s.to
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if err != nil {
		s.m.errs = append(s.m.errs, err)
	}
	s.m.got = append(s.m.got, e)
	return nil
}

// parseEmail finds the subject and the text and HTML parts of a MIME message.
func parseEmail(raw []byte) (email, error) {
	e := email{Raw: string(raw)}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return e, err
	}
	dec := new(mime.WordDecoder)
	if e.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return e, err
	}
	var walk func(h mail.Header, contentType string, body io.Reader) error
	walk = func(h mail.Header, contentType string, body io.Reader) error {
		mt, params, err := mime.ParseMediaType(contentType)
		if err != nil {
			return err
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				if err := walk(mail.Header(p.Header), p.Header.Get("Content-Type"), p); err != nil {
					return err
				}
			}
		}
		b, err := io.ReadAll(decodeTransfer(h.Get("Content-Transfer-Encoding"), body))
		if err != nil {
			return err
		}
		switch mt {
		case "text/plain":
			e.Text = string(b)
		case "text/html":
			e.HTML = string(b)
		}
		return nil
	}
	return e, walk(msg.Header, msg.Header.Get("Content-Type"), msg.Body)
}

func decodeTransfer(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r)
	}
	return r
}

// heldListener holds a port for a server that is not up: until up is called, it accepts each
// connection and closes it at once, so a client meets a server that is down, and no other
// test's server can be given the port meanwhile (a port closed and listened on again later
// can be).
type heldListener struct {
	net.Listener
	conns      chan net.Conn
	isUp, done chan struct{}
	up1, done1 sync.Once
}

// holdAddr listens on a port of 127.0.0.1 and holds it until the test ends.
func holdAddr(t *testing.T) *heldListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &heldListener{Listener: ln, conns: make(chan net.Conn), isUp: make(chan struct{}), done: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case <-h.isUp:
			default:
				c.Close()
				continue
			}
			select {
			case h.conns <- c:
			case <-h.done:
				c.Close()
				return
			}
		}
	}()
	t.Cleanup(func() { h.Close() })
	return h
}

// up makes the held port a server's: the listener it returns gives it the connections.
func (h *heldListener) up() net.Listener {
	h.up1.Do(func() { close(h.isUp) })
	return h
}

func (h *heldListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *heldListener) Close() error {
	h.done1.Do(func() { close(h.done) })
	return h.Listener.Close()
}
