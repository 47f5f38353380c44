package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress writes a status line about once a second: overwritten in place (\r) on a terminal,
// one plain line each time otherwise.
type progress struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	line func() string
	last int // length of the line on screen (tty)
	stop chan struct{}
	done chan struct{}
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, tty: isTerminal(w), stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) loop() {
	defer close(p.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
			p.mu.Lock()
			if p.line != nil {
				p.printLocked(p.line())
			}
			p.mu.Unlock()
		}
	}
}

func (p *progress) printLocked(s string) {
	if p.tty {
		pad := max(0, p.last-len(s))
		fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", pad))
		p.last = len(s)
		return
	}
	fmt.Fprintln(p.w, s)
}

// set makes line the status printed from now on (nil: none).
func (p *progress) set(line func() string) {
	p.mu.Lock()
	p.line = line
	p.mu.Unlock()
}

// note prints one line at once, above the status line.
func (p *progress) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *progress) clearLocked() {
	if p.tty && p.last > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.last))
		p.last = 0
	}
}

func (p *progress) close() {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	p.clearLocked()
	p.mu.Unlock()
}

// rateLine makes a status line function for a phase: events published of want, pairs
// delivered of need, and the delivery rate since the last line.
func rateLine(label string, published func() int64, wantEvents int64, delivered func() int64, need int64) func() string {
	lastT := time.Now()
	lastD := delivered()
	return func() string {
		now := time.Now()
		d := delivered()
		rate := float64(d-lastD) / now.Sub(lastT).Seconds()
		lastT, lastD = now, d
		return fmt.Sprintf("%s published %s/%s events · delivered %s/%s · %s deliveries/s",
			label, count(published()), count(wantEvents), count(d), count(need), count(int64(rate+0.5)))
	}
}
