package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/internal/config"
	"github.com/hookrelay/hookrelay/internal/version"
	"github.com/hookrelay/hookrelay/webhook"
)

// Run runs the bench o describes and returns its report. Progress goes to progress (once a
// second). The error is non-nil when the bench could not run or a check failed; the report,
// when not nil, says as much as is known either way.
func Run(ctx context.Context, o Options, progressOut io.Writer) (*Report, error) {
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Rounds == 1 {
		return runOnce(ctx, o, progressOut)
	}
	if err := emptyDataDir(o.DataDir); err != nil {
		return nil, err
	}
	dataDir := o.DataDir
	var rounds []*Report
	for k := range o.Rounds {
		fmt.Fprintf(progressOut, "[round %d of %d]\n", k+1, o.Rounds)
		if dataDir != "" {
			o.DataDir = filepath.Join(dataDir, fmt.Sprintf("round-%d", k+1))
		}
		rep, err := runOnce(ctx, o, progressOut)
		if rep != nil {
			rounds = append(rounds, rep)
		}
		if err != nil {
			return combine(rounds), fmt.Errorf("round %d of %d: %w", k+1, o.Rounds, err)
		}
	}
	return combine(rounds), nil
}

// emptyDataDir reports an error unless dir is "" (a temp dir), absent or empty.
func emptyDataDir(dir string) error {
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	switch {
	case err == nil && len(entries) > 0:
		return fmt.Errorf("--data-dir %s is not empty: give an empty or absent directory", dir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return nil
}

// runOnce runs one round of the scenario.
func runOnce(ctx context.Context, o Options, progressOut io.Writer) (rep *Report, err error) {
	cfg, err := o.serverConfig()
	if err != nil {
		return nil, err
	}
	if !setsLogLevel(o.ServerSettings) {
		cfg.LogLevel = slog.LevelWarn
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = o.DatabaseURL
	cfg.AllowPrivateDestinations = true
	cfg.RetrySchedule = o.RetrySchedule
	cfg.DeliveryTimeout = o.DeliveryTimeout

	r := &runner{o: o, cfg: cfg, logs: &logBuffer{}, token: token()}
	r.rep = &Report{Scenario: o.Scenario, Settings: r.settings(), Machine: machine(), Targets: []Target{}, Notes: []string{}}
	r.rep.Checks.Errors = []string{}

	// The data directory: a fresh temp dir, or the one given, which must be empty.
	if o.DatabaseURL == "" {
		if o.DataDir == "" {
			if r.root, err = os.MkdirTemp("", "hookrelay-bench-"); err != nil {
				return nil, err
			}
			defer os.RemoveAll(r.root)
		} else {
			if err := emptyDataDir(o.DataDir); err != nil {
				return nil, err
			}
			r.root = o.DataDir
		}
	}

	receivers := o.Receivers
	switch {
	case receivers > 0:
	case o.Scenario == "scale":
		// Every run sends to the same receivers, so that the large run differs from the small
		// ones by its registrations alone: with 16 receivers against 10 it delivered about 6%
		// less (BENCHMARKS.md, sixteenth session).
		receivers = smallWebhooks(o.Fanout)
	default:
		receivers = min(o.Webhooks, 16)
	}
	r.nReceivers = receivers
	r.rep.Settings.Receivers = receivers
	extra := 0
	if o.Scenario == "fairness" {
		extra = 1 // the extra webhooks get a receiver of their own
	}
	if r.rc, err = startReceivers(receivers + extra); err != nil {
		return nil, err
	}
	defer func() {
		r.rc.close() // waits for the handlers: then nothing touches the trackers
		for _, t := range r.trackers {
			t.release()
		}
	}()
	r.prog = newProgress(progressOut)
	defer r.prog.close()

	if o.CPUProfile != "" && (o.Scenario == "publish" || o.Scenario == "backlog") {
		// Their phases are not runs of their own: one profile, from here (the publish
		// scenario ends it when the publishing ends). The others profile each run's measured
		// phase (measure).
		if err := r.startProfile(o.CPUProfile); err != nil {
			return nil, err
		}
		defer r.endProfile()
	}

	var runErr error
	switch o.Scenario {
	case "throughput", "latency":
		runErr = r.simpleScenario(ctx)
	case "publish":
		runErr = r.publishScenario(ctx)
	case "backlog":
		runErr = r.backlogScenario(ctx)
	case "fairness":
		runErr = r.fairnessScenario(ctx)
	case "scale":
		runErr = r.scaleScenario(ctx)
	case "nodes":
		runErr = r.nodesScenario(ctx)
	}
	r.endProfile()
	r.rep.PeakRSSBytes = max(r.peakSeen, peakRSS())
	if o.MemProfile != "" {
		if err := writeAllocs(o.MemProfile); err != nil {
			return nil, fmt.Errorf("--memprofile: %w", err)
		}
	}

	if runErr == nil && o.Baseline && r.baseRun != nil {
		b, err := r.baseline(ctx, r.baseRun, baselineAfter)
		if err != nil {
			runErr = fmt.Errorf("baseline: %w", err)
		}
		r.rep.Baseline, r.rep.BaselineBefore = b, r.baselineBefore
		rate := 0.0
		if b != nil {
			rate = b.DeliveriesPerSec
			if bb := r.baselineBefore; bb != nil {
				rate = (rate + bb.DeliveriesPerSec) / 2
			}
		}
		switch {
		case rate <= 0 || len(r.rep.Runs) == 0:
		case r.mainOffered > 0:
			r.rep.Notes = append(r.rep.Notes, "no ratio to the baseline: the pipeline ran at an offered rate, not as fast as it could")
		default:
			r.rep.RatioToBaseline = r.mainRate / rate
		}
	}
	r.targets()
	r.rep.Notes = append(r.rep.Notes, "receivers and publishers run in the bench's process: CPU and RSS figures include them")
	if r.rssPerRun {
		r.rep.Notes = append(r.rep.Notes, "each run's peak RSS is its own: the kernel's high-water mark, reset at the run's start once the Go heap's free memory is given back")
	} else if len(r.rep.Runs) > 1 || r.o.Rounds > 1 {
		r.rep.Notes = append(r.rep.Notes, "peak RSS is the process's so far (ru_maxrss; it cannot be reset here): a run after a larger one shows that one's peak")
	}
	switch {
	case r.rep.BaselineBefore != nil && r.rep.Baseline != nil:
		r.rep.Notes = append(r.rep.Notes, "the baseline runs before and after the pipeline, on the same receivers, bodies and secrets; the ratio is taken of their mean")
	case r.rep.Baseline != nil:
		r.rep.Notes = append(r.rep.Notes, "the baseline runs after the pipeline, on the same receivers, bodies and secrets")
	}
	if o.DatabaseURL != "" {
		r.rep.Notes = append(r.rep.Notes, "CPU and RSS are this process's: the PostgreSQL server's are not included (the machine CPU line counts it)")
	}

	c := &r.rep.Checks
	c.EngineAttempts, c.EngineAttemptsNoResponse, c.EngineDeferred = r.engine.all, r.engine.noResponse, r.engine.deferred
	c.OK = runErr == nil && c.Missing == 0 && c.UnexplainedDuplicates == 0 && c.SignatureFailures == 0 && c.Problems == 0 && len(c.Errors) == 0
	if runErr != nil {
		r.rep.Error = runErr.Error()
	}
	if !c.OK {
		if logs := r.logs.String(); logs != "" {
			r.prog.note("server log:\n%s", strings.TrimRight(logs, "\n"))
		}
		if runErr == nil {
			runErr = errors.New(checkSummary(c))
		}
		return r.rep, runErr
	}
	return r.rep, nil
}

func checkSummary(c *Checks) string {
	var parts []string
	if c.SignatureFailures > 0 {
		parts = append(parts, fmt.Sprintf("%d signature failures", c.SignatureFailures))
	}
	if c.Missing > 0 {
		parts = append(parts, fmt.Sprintf("%d deliveries missing", c.Missing))
	}
	if c.UnexplainedDuplicates > 0 {
		parts = append(parts, fmt.Sprintf("%d duplicate deliveries no retry explains (200s to an attempt number that already had one)", c.UnexplainedDuplicates))
	}
	if c.Problems > 0 {
		parts = append(parts, fmt.Sprintf("%d unexpected requests", c.Problems))
	}
	if len(parts) == 0 {
		parts = c.Errors
	}
	return "checks failed: " + strings.Join(parts, "; ")
}

func setsLogLevel(settings []string) bool {
	for _, s := range settings {
		if strings.HasPrefix(strings.TrimSpace(s), "log-level=") {
			return true
		}
	}
	return false
}

func token() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH,
		Go: runtime.Version(), Hookrelay: version.String()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// runner carries one invocation.
type runner struct {
	o           Options
	cfg         config.Config
	logs        *logBuffer
	token       string
	root        string
	nReceivers  int
	rc          *receivers
	prog        *progress
	rep         *Report
	stopProfile func()
	// rssPerRun: each run's peak RSS is its own (resetPeakRSS worked); peakSeen is the largest
	// peak read so far.
	rssPerRun bool
	peakSeen  int64
	baseRun   *run // the run the baseline replays
	engine    engineAttempts
	// baselineBefore ran before baseRun's pipeline measured (throughput only).
	baselineBefore *BaselineReport
	mainRate       float64 // deliveries/s the baseline ratio is taken of
	mainOffered    float64 // the offered rate of that run (0 = as fast as possible)
	trackers       []*tracker
}

// newTracker makes a tracker that Run releases at its end, once the receivers are stopped.
func (r *runner) newTracker(lay *layout, bounds []int) *tracker {
	t := newTracker(lay, r.o.Payload, time.Now(), bounds)
	r.trackers = append(r.trackers, t)
	return t
}

// writeAllocs writes the allocations sampled since the process started.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
}

// startProfile starts a CPU profile into path, which endProfile ends.
func (r *runner) startProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	r.stopProfile = func() {
		pprof.StopCPUProfile()
		f.Close()
	}
	return nil
}

// profilePath is where the CPU profile of the run named name goes: --cpuprofile itself for the
// scenarios of one run, else the run's name added to it (cpu.prof → cpu-large.prof).
func (r *runner) profilePath(name string) string {
	p := r.o.CPUProfile
	if r.o.Scenario == "throughput" || r.o.Scenario == "latency" {
		return p
	}
	ext := filepath.Ext(p)
	return strings.TrimSuffix(p, ext) + "-" + name + ext
}

func (r *runner) endProfile() {
	if r.stopProfile != nil {
		r.stopProfile()
		r.stopProfile = nil
	}
}

func (r *runner) settings() Settings {
	o := r.o
	lay, _ := newLayout(o.Webhooks, o.Accounts, o.Fanout)
	s := Settings{
		Scenario: o.Scenario, Events: o.Events, Webhooks: o.Webhooks, Fanout: o.Fanout, Publishers: o.Publishers,
		Batch: o.Batch, Rate: o.Rate, FailRate: o.FailRate, LatencyMs: ms(o.Latency), Payload: o.Payload, Nodes: o.Nodes,
		Store: "embedded", DataDir: o.DataDir, RetrySchedule: durations(o.RetrySchedule), DeliveryTimeout: o.DeliveryTimeout.String(),
		ServerSettings: o.ServerSettings, Baseline: o.Baseline, BaselineWorkers: o.BaselineWorkers, BaselineMax: o.BaselineMax,
		Rounds: o.Rounds,
	}
	if lay != nil {
		s.Accounts = lay.accounts
	}
	if o.DatabaseURL != "" {
		s.Store = "postgres"
	}
	return s
}

// run is one pipeline with its webhooks, tracker and receivers' target.
type run struct {
	name     string
	lay      *layout
	t        *tracker
	p        *pipeline
	tg       *target
	hooks    []*hook // by layout index
	extras   []*hook
	accounts []account
	dir      string
	started  time.Time
	nodes    int
}

// newRun starts a pipeline for bounds (event index ranges) and creates its accounts and webhooks,
// plus one extra webhook of each kind in extras (in group 0, on the last receiver).
func (r *runner) newRun(ctx context.Context, name string, nodes, webhooks, accounts int, bounds []int, extras ...hookKind) (*run, error) {
	o := r.o
	lay, err := newLayout(webhooks, accounts, o.Fanout)
	if err != nil {
		return nil, err
	}
	ru := &run{name: name, lay: lay, t: r.newTracker(lay, bounds), nodes: nodes}
	cfg := r.cfg
	if o.DatabaseURL == "" {
		ru.dir = filepath.Join(r.root, name)
		cfg.DataDir = ru.dir
	}
	r.prog.note("[%s] starting %d node(s), %s webhooks on %s accounts", name, nodes, count(int64(webhooks)), count(int64(lay.accounts)))
	r.rssPerRun = resetPeakRSS()
	po := o
	po.Nodes = nodes
	if ru.p, err = startPipeline(ctx, po, cfg, r.logs); err != nil {
		return nil, err
	}
	ru.p.engine = &r.engine
	tok := r.token + "-" + name
	for k := range lay.webhooks() {
		rcv := k % r.nReceivers
		h := &hook{k: k, group: k / o.Fanout, slot: k % o.Fanout, receiver: rcv, url: r.rc.urls[rcv] + "/w/" + strconv.Itoa(k),
			secret: secretFor(tok, k), limit: 1_000_000}
		h.verify = h.secret
		if o.wrongSecrets {
			h.verify = secretFor(tok, k) // another webhook's kind of secret: never this one
		}
		ru.hooks = append(ru.hooks, h)
	}
	for n, kind := range extras {
		rcv := len(r.rc.urls) - 1
		h := &hook{k: -1, group: 0, slot: -1, kind: kind, receiver: rcv, url: r.rc.urls[rcv] + "/x/" + strconv.Itoa(n),
			secret: secretFor(tok, -1-n), limit: 1_000_000, extra: &extraStats{}}
		if kind == kindLimited {
			h.limit = 60
		}
		h.verify = h.secret
		ru.extras = append(ru.extras, h)
	}
	all := append(append([]*hook{}, ru.hooks...), ru.extras...)
	ru.accounts, err = ru.p.setup(ctx, lay, all, tok, func(s string) { r.prog.note("[%s] %s", name, s) })
	if err != nil {
		return ru, errors.Join(err, ru.stop())
	}
	ru.tg = &target{
		t:           ru.t,
		hooks:       make(map[int64]*hook, len(all)),
		failRate:    o.FailRate,
		lastAttempt: len(o.RetrySchedule) + 1,
		latency:     o.Latency,
		stallFor:    o.DeliveryTimeout + time.Second,
		closing:     make(chan struct{}),
	}
	for _, h := range all {
		ru.tg.hooks[h.id] = h
	}
	r.rc.cur.Store(ru.tg)
	ru.started = time.Now()
	return ru, nil
}

// peakRSS is the process's peak RSS since the current run began (see resetPeakRSS); the
// runner keeps the largest it reads for the invocation's own peak.
func (r *runner) peakRSS() int64 {
	rss := peakRSS()
	r.peakSeen = max(r.peakSeen, rss)
	return rss
}

// stop stops the run's pipeline after letting go of any request the receivers hold.
func (ru *run) stop() error {
	if ru.tg != nil {
		ru.tg.setUp()
		ru.tg.close()
	}
	if ru.p == nil {
		return nil
	}
	return ru.p.stop()
}

func (r *runner) publisher(ru *run) *publisher {
	return &publisher{p: ru.p, t: ru.t, accounts: ru.accounts, payload: r.o.Payload}
}

// publish publishes events [lo, hi) at rate (0 = as fast as possible).
func (r *runner) publish(ctx context.Context, pb *publisher, lo, hi int, rate float64) error {
	if rate > 0 {
		_, err := pb.openLoop(ctx, lo, hi, r.o.Batch, rate, max(r.o.Publishers, 64), nil)
		return err
	}
	return pb.closedLoop(ctx, lo, hi, r.o.Batch, r.o.Publishers)
}

// wait waits until the pairs of range k have all had a 200: want of them. It gives up on a
// failed check, after a stretch without progress, or at --timeout.
func (r *runner) wait(ctx context.Context, ru *run, k int, want int64) error {
	t := ru.t
	var sched time.Duration
	for _, d := range r.o.RetrySchedule {
		sched += d
	}
	stallLimit := max(time.Minute, sched+r.o.DeliveryTimeout+30*time.Second)
	deadline := time.Now().Add(r.o.Timeout)
	last, lastChange := t.delivered[k].Load(), time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		n := t.delivered[k].Load()
		switch {
		case n >= want:
			return nil
		case t.badSig.Load() > 0:
			return errors.New("a signature did not verify; stopped waiting")
		case t.problemCount() > 0:
			return errors.New("the receivers got requests they should not have; stopped waiting")
		}
		now := time.Now()
		if n != last {
			last, lastChange = n, now
		}
		if now.Sub(lastChange) > stallLimit {
			return fmt.Errorf("no delivery arrived for %s: %s of %s delivered", stallLimit, count(n), count(want))
		}
		if now.After(deadline) {
			return fmt.Errorf("--timeout %s passed: %s of %s delivered", r.o.Timeout, count(n), count(want))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// storeSize is the size of the run's store: its data directory, or the PostgreSQL database.
func (r *runner) storeSize(ctx context.Context, ru *run) int64 {
	if r.o.DatabaseURL != "" {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, r.o.DatabaseURL)
		if err != nil {
			return 0
		}
		defer conn.Close(ctx)
		var n int64
		if conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n) != nil {
			return 0
		}
		return n
	}
	var n int64
	filepath.WalkDir(ru.dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// measured is what is taken around a measured phase.
type measured struct {
	cpu           time.Duration
	storeBytes    int64
	writer        *WriterReport
	machine       *MachineUse
	inFlightBound float64 // share of the phase the bound on attempts in flight held it back
}

// mark is what is read at the edges of a measured phase: the process's CPU time, the store
// writer's figures and the machine's CPU time.
type mark struct {
	cpu     time.Duration
	writer  writerMark
	machine cpuTimes
}

func (ru *run) mark() mark {
	cpu, _ := usage()
	return mark{cpu: cpu, writer: ru.p.writerMark(), machine: machineTimes()}
}

// since is what was measured from m0 to m, the store's size aside.
func (m mark) since(m0 mark) measured {
	return measured{cpu: m.cpu - m0.cpu, writer: m.writer.since(m0.writer), machine: m.machine.since(m0.machine)}
}

// report makes the report of events [lo, hi) of ru, published by pb.
func (r *runner) report(ru *run, pb *publisher, lo, hi int, rate float64, m measured) RunReport {
	t := ru.t
	s := t.collect(lo, hi, true)
	rss := r.peakRSS()
	rep := RunReport{
		Name: ru.name, Webhooks: ru.lay.webhooks(), Accounts: ru.lay.accounts, Fanout: ru.lay.fanout, Nodes: ru.nodes,
		Events: hi - lo, Deliveries: s.pairs, OfferedRate: rate,
		Requests: s.requests, Duplicates: s.duplicates, FailedOnPurpose: s.failed,
		CPUSeconds:    m.cpu.Seconds(),
		Writer:        m.writer,
		Machine:       m.machine,
		InFlightBound: m.inFlightBound,
		PeakRSSBytes:  rss, StoreBytes: m.storeBytes, BookkeepingBytes: t.bytes(),
		LatencyMs: percentiles(s.latencies, tick),
	}
	if pb != nil {
		first, last := pb.firstSent.Load(), pb.lastAnswr.Load()
		rep.PublishSeconds = time.Duration(last - first).Seconds()
		if rep.PublishSeconds > 0 {
			rep.PublishEventsPerSec = float64(pb.accepted.Load()) / rep.PublishSeconds
		}
		rep.PublishRequestMs = pb.publishRTT()
		rep.PublishMaxLagMs = ms(time.Duration(pb.maxLag.Load()))
	}
	if s.lastFirst > s.firstSent {
		rep.Seconds = time.Duration(s.lastFirst - s.firstSent).Seconds()
		rep.DeliveriesPerSec = float64(s.delivered) / rep.Seconds
		rep.CPUCores = rep.CPUSeconds / rep.Seconds
	}
	if s.delivered > 0 {
		rep.AttemptsPerDelivery = float64(s.requests) / float64(s.delivered)
		rep.CPUSecondsPer1000 = rep.CPUSeconds / float64(s.delivered) * 1000
	}
	return rep
}

// addChecks checks events [lo, hi) of t once its pipeline has stopped: every pair arrived, no
// unexplained duplicate, the ids delivered are the ids published.
func (r *runner) addChecks(name string, t *tracker, lo, hi int) {
	t.checkIDs(lo, hi)
	s := t.collect(lo, hi, false)
	r.rep.Checks.add(Checks{Deliveries: s.pairs, Delivered: s.delivered, Missing: s.missing, Duplicates: s.duplicates,
		UnexplainedDuplicates: s.unexplained, Errors: s.examples}, name+": ")
}

// addTrackerChecks adds what the receivers found wrong during a run (once per tracker).
func (r *runner) addTrackerChecks(name string, t *tracker) {
	c := &r.rep.Checks
	c.SignatureFailures += t.badSig.Load()
	t.mu.Lock()
	c.Problems += t.nProblem - min(t.nProblem, t.badSig.Load())
	for _, p := range t.problems {
		c.Errors = append(c.Errors, name+": "+p)
	}
	t.mu.Unlock()
}

// failed notes an error of a run in the checks and returns it.
func (r *runner) failed(name string, err error) error {
	if err != nil {
		r.rep.Checks.Errors = append(r.rep.Checks.Errors, name+": "+err.Error())
	}
	return err
}

// measure publishes all of ru's events, waits for their deliveries, stops the pipeline and
// reports. An error from waiting is kept in the checks: the report still says what arrived.
func (r *runner) measure(ctx context.Context, ru *run, rate float64) (RunReport, error) {
	n := ru.t.events
	want := int64(n) * int64(ru.lay.fanout)
	pb := r.publisher(ru)
	r.prog.set(rateLine("["+ru.name+"]", pb.accepted.Load, int64(n), ru.t.total.Load, want))
	if r.o.CPUProfile != "" {
		// The run's measured phase alone: not its set-up (creating 10,000 webhooks through the
		// API took a fifth of a profile of the scale scenario's large run), nor a baseline.
		if err := r.startProfile(r.profilePath(ru.name)); err != nil {
			return RunReport{}, errors.Join(err, ru.stop())
		}
	}
	m0 := ru.mark()
	bound := ru.p.watchBound()
	err := r.publish(ctx, pb, 0, n, rate)
	if err == nil {
		err = r.wait(ctx, ru, 0, want)
	}
	m := ru.mark().since(m0)
	m.inFlightBound = bound.end()
	r.endProfile()
	r.prog.set(nil)
	m.storeBytes = r.storeSize(ctx, ru)
	err = errors.Join(r.failed(ru.name, err), ru.stop())
	rep := r.report(ru, pb, 0, n, rate, m)
	r.addChecks(ru.name, ru.t, 0, n)
	r.addTrackerChecks(ru.name, ru.t)
	r.prog.note("[%s] %s deliveries/s end to end, p99 %s ms", ru.name, count(int64(rep.DeliveriesPerSec)), fixed(rep.LatencyMs.P99, 1))
	if rep.InFlightBound >= 0.5 {
		note := fmt.Sprintf("the bound on attempts in flight (--max-in-flight %d), not the CPU, held back most of a run: receivers this slow to answer need more (--set max-in-flight=…, max-in-flight-per-webhook=…; docs/delivery.md)", ru.p.maxInFlight)
		if !slices.Contains(r.rep.Notes, note) {
			r.rep.Notes = append(r.rep.Notes, note)
		}
	}
	return rep, err
}

// Baseline runs: the one after the pipeline replays its events; the throughput scenario also
// runs one before, so that the ratio is taken of the two around the pipeline.
const (
	baselineAfter  = "after the pipeline"
	baselineBefore = "before the pipeline"
)

// simpleScenario is throughput and latency: one run.
func (r *runner) simpleScenario(ctx context.Context) error {
	o := r.o
	ru, err := r.newRun(ctx, "main", o.Nodes, o.Webhooks, o.Accounts, []int{o.Events})
	if err != nil {
		return err
	}
	if o.Baseline && o.Rate == 0 {
		// The pipeline is up but idle; the receivers serve the baseline's target meanwhile.
		r.baselineBefore, err = r.baseline(ctx, ru, baselineBefore)
		r.rc.cur.Store(ru.tg)
		if err != nil {
			return errors.Join(fmt.Errorf("baseline: %w", err), ru.stop())
		}
	}
	rep, err := r.measure(ctx, ru, o.Rate)
	r.rep.Runs = append(r.rep.Runs, rep)
	r.baseRun, r.mainRate, r.mainOffered = ru, rep.DeliveriesPerSec, o.Rate
	return err
}

// scaleScenario: the same events and fan-out on 10 webhooks, then on --webhooks/--accounts,
// then on 10 webhooks again.
func (r *runner) scaleScenario(ctx context.Context) error {
	o := r.o
	small := smallWebhooks(o.Fanout)
	// The small layout runs before and after the large one, and the large run is compared
	// with their mean: a machine that drifts slower or faster during the scenario then does
	// not count against or for the large layout (on the project's machines the later of two
	// runs was often the slower).
	_, repS, err := r.fresh(ctx, "small", o.Nodes, small, 0)
	if err != nil {
		return err
	}
	rl, repL, err := r.fresh(ctx, "large", o.Nodes, o.Webhooks, o.Accounts)
	if err != nil {
		return err
	}
	_, repA, err := r.fresh(ctx, "small-after", o.Nodes, small, 0)
	if err != nil {
		return err
	}
	sc := &ScaleReport{SmallWebhooks: repS.Webhooks, SmallAccounts: repS.Accounts,
		SmallDeliveriesPerSec: repS.DeliveriesPerSec, SmallAfterDeliveriesPerSec: repA.DeliveriesPerSec,
		LargeWebhooks: repL.Webhooks, LargeAccounts: repL.Accounts, LargeDeliveriesPerSec: repL.DeliveriesPerSec}
	if mean := (sc.SmallDeliveriesPerSec + sc.SmallAfterDeliveriesPerSec) / 2; mean > 0 {
		sc.Ratio = sc.LargeDeliveriesPerSec / mean
		sc.CostPercent = (1 - sc.Ratio) * 100
	}
	r.rep.Scale = sc
	r.baseRun, r.mainRate, r.mainOffered = rl, repL.DeliveriesPerSec, o.Rate
	return nil
}

// nodesScenario: one node, then --nodes nodes, then one node again, each a fresh throughput
// run on the same database. The nodes' run is compared with the mean of the one-node runs, as
// the scale scenario compares its large run with its small ones.
func (r *runner) nodesScenario(ctx context.Context) error {
	o := r.o
	_, one, err := r.fresh(ctx, "one-node", 1, o.Webhooks, o.Accounts)
	if err != nil {
		return err
	}
	rn, many, err := r.fresh(ctx, fmt.Sprintf("%d-nodes", o.Nodes), o.Nodes, o.Webhooks, o.Accounts)
	if err != nil {
		return err
	}
	_, after, err := r.fresh(ctx, "one-node-again", 1, o.Webhooks, o.Accounts)
	if err != nil {
		return err
	}
	n := &NodesReport{Nodes: o.Nodes, OneDeliveriesPerSec: one.DeliveriesPerSec, OneAfterDeliveriesPerSec: after.DeliveriesPerSec,
		OneMeanDeliveriesPerSec: (one.DeliveriesPerSec + after.DeliveriesPerSec) / 2, NodesDeliveriesPerSec: many.DeliveriesPerSec}
	if n.OneMeanDeliveriesPerSec > 0 {
		n.Ratio = n.NodesDeliveriesPerSec / n.OneMeanDeliveriesPerSec
	}
	r.rep.Nodes = n
	r.baseRun, r.mainRate, r.mainOffered = rn, many.DeliveriesPerSec, o.Rate
	return nil
}

// fresh makes a fresh run of --events with the layout given, measures it and adds its report.
func (r *runner) fresh(ctx context.Context, name string, nodes, webhooks, accounts int, extra ...hookKind) (*run, RunReport, error) {
	ru, err := r.newRun(ctx, name, nodes, webhooks, accounts, []int{r.o.Events}, extra...)
	if err != nil {
		return nil, RunReport{}, err
	}
	rep, err := r.measure(ctx, ru, r.o.Rate)
	r.rep.Runs = append(r.rep.Runs, rep)
	return ru, rep, err
}

// fairnessScenario: control, then with a limited webhook, then with a timing-out one, then
// control again. Each is compared with the mean of the two controls, as the scale scenario
// compares its large run with its small ones: a machine that drifts during the scenario then
// counts neither against nor for the runs between.
func (r *runner) fairnessScenario(ctx context.Context) error {
	o := r.o
	f := &FairnessReport{}
	r.rep.Fairness = f
	variants := []struct {
		name  string
		extra []hookKind
	}{{"control", nil}, {"limited", []hookKind{kindLimited}}, {"timeout", []hookKind{kindStalled}}, {"control-after", nil}}
	for _, v := range variants {
		ru, rep, err := r.fresh(ctx, v.name, o.Nodes, o.Webhooks, o.Accounts, v.extra...)
		if err != nil {
			return err
		}
		events := int64((o.Events + len(ru.lay.groups) - 1) / len(ru.lay.groups)) // group 0's share
		switch v.name {
		case "control":
			f.ControlDeliveriesPerSec = rep.DeliveriesPerSec
			r.baseRun, r.mainRate, r.mainOffered = ru, rep.DeliveriesPerSec, o.Rate
		case "limited":
			x := ru.extras[0]
			f.LimitedDeliveriesPerSec = rep.DeliveriesPerSec
			f.LimitedWebhook = ExtraReport{Limit: x.limit, Events: events, Requests: x.extra.requests.Load(), OK: x.extra.ok.Load(), TimedOut: x.extra.timedOut.Load()}
			if err := x.extra.checkWindow(x.limit); err != nil {
				r.rep.Checks.Problems++
				r.rep.Checks.Errors = append(r.rep.Checks.Errors, "limited: "+err.Error())
			}
		case "timeout":
			x := ru.extras[0]
			f.TimeoutDeliveriesPerSec = rep.DeliveriesPerSec
			f.TimeoutWebhook = ExtraReport{Limit: x.limit, Events: events, Requests: x.extra.requests.Load(), OK: x.extra.ok.Load(), TimedOut: x.extra.timedOut.Load()}
		case "control-after":
			f.ControlAfterDeliveriesPerSec = rep.DeliveriesPerSec
		}
	}
	if mean := (f.ControlDeliveriesPerSec + f.ControlAfterDeliveriesPerSec) / 2; mean > 0 {
		f.LimitedRatio = f.LimitedDeliveriesPerSec / mean
		f.TimeoutRatio = f.TimeoutDeliveriesPerSec / mean
	}
	return nil
}

// publishScenario: receivers down while every event is published, so that publishing has the
// cores to itself; then receivers return and every delivery is checked.
func (r *runner) publishScenario(ctx context.Context) error {
	n := r.o.Events
	ru, err := r.newRun(ctx, "publish", r.o.Nodes, r.o.Webhooks, r.o.Accounts, []int{n})
	if err != nil {
		return err
	}
	defer ru.stop()
	want := int64(n) * int64(ru.lay.fanout)
	ru.tg.setDown()
	pb := r.publisher(ru)
	r.prog.set(func() string {
		return fmt.Sprintf("[publish: receivers down] published %s/%s events", count(pb.accepted.Load()), count(int64(n)))
	})
	m0 := ru.mark()
	err = r.publish(ctx, pb, 0, n, 0)
	m1 := ru.mark()
	r.endProfile() // the profile is of the publishing alone
	if err != nil {
		return r.failed("publish", err)
	}
	r.prog.note("[publish] %s events accepted; receivers come back", count(pb.accepted.Load()))
	r.prog.set(rateLine("[publish: delivering]", pb.accepted.Load, int64(n), ru.t.total.Load, want))
	ru.tg.setUp()
	err = r.wait(ctx, ru, 0, want)
	r.prog.set(nil)
	// No delivery CPU: what was measured is the publishing's, as the writer's and the
	// machine's figures are.
	m := m1.since(m0)
	m.cpu, m.storeBytes = 0, r.storeSize(ctx, ru)
	err = errors.Join(r.failed(ru.name, err), ru.stop())
	rep := r.report(ru, pb, 0, n, 0, m)
	rep.PublishCPUSeconds = (m1.cpu - m0.cpu).Seconds()
	rep.PublishCPUSecondsPer1000 = rep.PublishCPUSeconds * 1000 / float64(n)
	if rep.PublishSeconds > 0 {
		rep.PublishCPUCores = rep.PublishCPUSeconds / rep.PublishSeconds
	}
	r.rep.Runs = append(r.rep.Runs, rep)
	r.addChecks(ru.name, ru.t, 0, n)
	r.addTrackerChecks(ru.name, ru.t)
	return err
}

// backlogScenario: normal phase, receivers down while events accumulate, then the drain.
func (r *runner) backlogScenario(ctx context.Context) error {
	o := r.o
	n0 := max(1, o.Events/10)
	nb := o.Events
	nNew := o.Events // room for the events that flow during the drain
	ru, err := r.newRun(ctx, "backlog", o.Nodes, o.Webhooks, o.Accounts, []int{n0, n0 + nb, n0 + nb + nNew})
	if err != nil {
		return err
	}
	r.baseRun = ru
	defer ru.stop()
	t, f := ru.t, int64(ru.lay.fanout)
	b := &BacklogReport{NewEventsRate: o.Rate}
	r.rep.Backlog = b

	// Normal.
	pb := r.publisher(ru)
	r.prog.set(rateLine("[backlog: normal]", pb.accepted.Load, int64(n0), func() int64 { return t.delivered[0].Load() }, int64(n0)*f))
	m0 := ru.mark()
	err = r.publish(ctx, pb, 0, n0, 0)
	if err == nil {
		err = r.wait(ctx, ru, 0, int64(n0)*f)
	}
	m := ru.mark().since(m0)
	if err != nil {
		return r.failed("backlog: normal", err)
	}
	m.storeBytes = r.storeSize(ctx, ru)
	normal := r.report(ru, pb, 0, n0, 0, m)
	normal.Name = "backlog: normal"
	r.rep.Runs = append(r.rep.Runs, normal)
	b.NormalDeliveriesPerSec = normal.DeliveriesPerSec
	r.mainRate = normal.DeliveriesPerSec
	r.prog.note("[backlog] normal rate %s deliveries/s; receivers go down", count(int64(b.NormalDeliveriesPerSec)))

	// Receivers down: deliveries accumulate.
	ru.tg.setDown()
	pb = r.publisher(ru)
	r.prog.set(func() string {
		return fmt.Sprintf("[backlog: receivers down] published %s/%s events · %s deliveries pending", count(pb.accepted.Load()), count(int64(nb)), count(pb.accepted.Load()*f))
	})
	cpu0, _ := usage()
	if err := r.publish(ctx, pb, n0, n0+nb, 0); err != nil {
		return r.failed("backlog: receivers down", err)
	}
	cpu1, _ := usage()
	rss := r.peakRSS()
	b.Pending = int64(nb)*f - t.delivered[1].Load()
	b.AccumulateSeconds = time.Duration(pb.lastAnswr.Load() - pb.firstSent.Load()).Seconds()
	if b.AccumulateSeconds > 0 {
		b.AccumulateEventsPerSec = float64(nb) / b.AccumulateSeconds
	}
	b.PeakRSSWithBacklog = rss
	b.StoreBytesWithBacklog = r.storeSize(ctx, ru)
	downCPU := cpu1 - cpu0
	pbDown := pb
	r.prog.note("[backlog] %s deliveries pending, peak RSS %s; receivers come back", count(b.Pending), mib(rss))

	// Receivers back, new events flowing, until the backlog is delivered.
	pbNew := r.publisher(ru)
	stop := make(chan struct{})
	type result struct {
		end int
		err error
	}
	newDone := make(chan result, 1)
	cpu0, _ = usage()
	back := t.now()
	ru.tg.setUp()
	go func() {
		if o.Rate <= 0 {
			newDone <- result{n0 + nb, nil}
			return
		}
		end, err := pbNew.openLoop(ctx, n0+nb, n0+nb+nNew, o.Batch, o.Rate, max(o.Publishers, 64), stop)
		newDone <- result{end, err}
	}()
	lastT, lastD := time.Now(), t.total.Load()
	r.prog.set(func() string {
		now, d := time.Now(), t.total.Load()
		rate := float64(d-lastD) / now.Sub(lastT).Seconds()
		lastT, lastD = now, d
		return fmt.Sprintf("[backlog: drain] backlog delivered %s/%s · new events published %s, delivered %s · %s deliveries/s in all",
			count(t.delivered[1].Load()), count(int64(nb)*f), count(pbNew.accepted.Load()), count(t.delivered[2].Load()), count(int64(rate+0.5)))
	})
	err = r.wait(ctx, ru, 1, int64(nb)*f)
	close(stop)
	res := <-newDone
	cpu1, _ = usage()
	if err == nil {
		err = res.err
	}
	if err == nil && res.end > n0+nb {
		r.prog.set(rateLine("[backlog: new events]", pbNew.accepted.Load, int64(res.end-n0-nb), func() int64 { return t.delivered[2].Load() }, int64(res.end-n0-nb)*f))
		err = r.wait(ctx, ru, 2, int64(res.end-n0-nb)*f)
	}
	r.prog.set(nil)
	storeBytes := r.storeSize(ctx, ru)
	err = errors.Join(r.failed("backlog: drain", err), ru.stop())

	sb := t.collect(n0, n0+nb, false)
	b.NewEvents = res.end - n0 - nb
	b.DrainSeconds = time.Duration(sb.lastFirst - back).Seconds()
	if b.DrainSeconds > 0 {
		b.DrainDeliveriesPerSec = float64(sb.delivered) / b.DrainSeconds
		var newByEnd int64
		for i := n0 + nb; i < res.end; i++ {
			for k := range int(f) {
				if first := fromTick(t.pairs[i*int(f)+k].first.Load()); first > 0 && first <= sb.lastFirst {
					newByEnd++
				}
			}
		}
		b.DrainTotalDeliveriesPerSec = float64(sb.delivered+newByEnd) / b.DrainSeconds
	}
	// The time to 99% shows the bulk of the drain apart from its tail.
	if firsts := t.firsts(n0, n0+nb); len(firsts) > 0 {
		k := max(0, int(0.99*float64(len(firsts)))-1)
		b.Drain99Seconds = time.Duration(firsts[k] - back).Seconds()
		if b.Drain99Seconds > 0 {
			b.Drain99DeliveriesPerSec = float64(k+1) / b.Drain99Seconds
		}
	}
	if b.NormalDeliveriesPerSec > 0 {
		b.DrainRatio = b.DrainDeliveriesPerSec / b.NormalDeliveriesPerSec
	}
	b.PeakRSSBytes = r.peakRSS()

	down := r.report(ru, pbDown, n0, n0+nb, 0, measured{cpu: downCPU + (cpu1 - cpu0), storeBytes: storeBytes})
	down.Name = "backlog: receivers down, then drain"
	r.rep.Runs = append(r.rep.Runs, down)
	if res.end > n0+nb {
		fresh := r.report(ru, pbNew, n0+nb, res.end, o.Rate, measured{storeBytes: storeBytes})
		fresh.Name = "backlog: new events during the drain"
		r.rep.Runs = append(r.rep.Runs, fresh)
	}
	r.addChecks("backlog", t, 0, res.end)
	r.addTrackerChecks("backlog", t)
	return err
}

// baseline sends ru's deliveries (at most --baseline-max) straight from memory: the same signed
// POSTs to the same receivers, from a fixed pool of goroutines, with no store and no queue.
// After the pipeline it replays the events it published, with their ids; before (when is
// "before the pipeline"), nothing is published yet and the events get ids of their own.
func (r *runner) baseline(ctx context.Context, ru *run, when string) (*BaselineReport, error) {
	o := r.o
	lay := ru.lay
	f := lay.fanout
	events := max(1, o.BaselineMax/f)
	if when == baselineBefore {
		events = min(events, o.Events)
	} else {
		events = min(events, ru.t.published())
	}
	bt := r.newTracker(lay, []int{events})
	ids := make([]string, events)
	for i := range events {
		var id uuid.UUID
		if when == baselineBefore {
			id = uuid.Must(uuid.NewV7())
		} else {
			id = ru.t.ids[i]
		}
		bt.setID(i, id)
		ids[i] = id.String()
	}
	tg := &target{t: bt, hooks: ru.tg.hooks, failRate: o.FailRate, lastAttempt: len(o.RetrySchedule) + 1, latency: o.Latency,
		stallFor: o.DeliveryTimeout + time.Second, closing: make(chan struct{})}
	r.rc.cur.Store(tg)
	defer tg.close()

	transport := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        2 * o.BaselineWorkers,
		MaxIdleConnsPerHost: o.BaselineWorkers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signers := make([]*webhook.Signer, len(ru.hooks))
	whIDs := make([]string, len(ru.hooks))
	for k, h := range ru.hooks {
		signers[k] = webhook.NewSigner(h.secret)
		whIDs[k] = strconv.FormatInt(h.id, 10)
	}
	ua := version.UserAgent()
	pairs := events * f
	r.prog.note("[baseline] %s deliveries from %d goroutines", count(int64(pairs)), o.BaselineWorkers)
	r.prog.set(rateLine("[baseline]", func() int64 { return int64(events) }, int64(events), bt.total.Load, int64(pairs)))
	defer r.prog.set(nil)

	cpu0, _ := usage()
	start := time.Now()
	err := parallel(ctx, o.BaselineWorkers, pairs, func(ctx context.Context, k int) error {
		i, s := k/f, k%f
		h := ru.hooks[lay.groupOf(i)*f+s]
		bp := reqPool.Get().(*[]byte)
		body := lay.appendBody((*bp)[:0], i, o.Payload)
		defer func() { *bp = body[:0]; reqPool.Put(bp) }()
		sig := signers[h.k].Sign(body)
		for attempt := 1; attempt <= len(o.RetrySchedule)+1; attempt++ {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			hd := req.Header
			hd["Content-Type"] = []string{"application/json"}
			hd["User-Agent"] = []string{ua}
			hd[webhook.SignatureHeader] = []string{sig}
			hd[webhook.EventIDHeader] = []string{ids[i]}
			hd[webhook.EventTypeHeader] = []string{lay.groups[h.group].typ}
			hd[webhook.WebhookIDHeader] = []string{whIDs[h.k]}
			hd[webhook.AttemptHeader] = []string{strconv.Itoa(attempt)}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				return nil
			case http.StatusInternalServerError:
				continue // --fail-rate: send again at once
			case http.StatusUnauthorized:
				return fmt.Errorf("event %d to webhook %d: the receiver rejected its signature", i, h.id)
			default:
				return fmt.Errorf("receiver answered %s", resp.Status)
			}
		}
		return fmt.Errorf("event %d to webhook %d: no 200 after %d attempts", i, h.id, len(o.RetrySchedule)+1)
	})
	elapsed := time.Since(start)
	cpu1, _ := usage()
	requests := bt.requests.Load()

	bt.checkIDs(0, events)
	s := bt.collect(0, events, false)
	r.addTrackerChecks("baseline", bt)
	c := &r.rep.Checks
	if s.missing > 0 || s.unexplained > 0 {
		c.Missing += s.missing
		c.UnexplainedDuplicates += s.unexplained
		for _, e := range s.examples {
			c.Errors = append(c.Errors, "baseline: "+e)
		}
	}
	b := &BaselineReport{When: when, Deliveries: s.delivered, Requests: requests, Workers: o.BaselineWorkers, Seconds: elapsed.Seconds()}
	if b.Seconds > 0 {
		b.DeliveriesPerSec = float64(s.delivered) / b.Seconds
		b.CPUCores = (cpu1 - cpu0).Seconds() / b.Seconds
	}
	if s.delivered > 0 {
		b.CPUSecondsPer1000 = (cpu1 - cpu0).Seconds() / float64(s.delivered) * 1000
	}
	r.prog.note("[baseline] %s deliveries/s", count(int64(b.DeliveriesPerSec)))
	return b, err
}

// targets lists the performance issue's targets this scenario is judged by.
func (r *runner) targets() {
	rep := r.rep
	add := func(name, want string, value float64, unit string, meets func(float64) bool) {
		rep.Targets = append(rep.Targets, Target{Name: name, Want: want, Value: value, Unit: unit, Met: meets(value), meets: meets})
	}
	atLeast := func(min float64) func(float64) bool { return func(v float64) bool { return v >= min } }
	var main *RunReport
	if len(rep.Runs) > 0 {
		main = &rep.Runs[0]
	}
	switch rep.Scenario {
	case "throughput":
		if r.o.DatabaseURL != "" {
			// The other throughput targets are the embedded store's; PostgreSQL has its own.
			switch {
			case main == nil:
			case r.o.Nodes == 1:
				add("PostgreSQL, one node: deliveries/s", "≥ 5,000", main.DeliveriesPerSec, "/s", atLeast(5_000))
			default:
				rep.Notes = append(rep.Notes, fmt.Sprintf("PostgreSQL target for %d nodes: more deliveries/s than one node; the nodes scenario (--scenario nodes) compares them in one invocation", r.o.Nodes))
			}
			break
		}
		if main != nil {
			add("deliveries/s end to end", "≥ 10,000", main.DeliveriesPerSec, "/s", atLeast(10_000))
			if rep.RatioToBaseline > 0 {
				add("pipeline ÷ baseline", "≥ 0.5", rep.RatioToBaseline, "×", atLeast(0.5))
			}
		}
	case "publish":
		if main != nil {
			add("events/s accepted (POST /v3/events/batch)", "≥ 50,000", main.PublishEventsPerSec, "/s", atLeast(50_000))
		}
	case "latency":
		if main != nil {
			add(fmt.Sprintf("p99 publish→receipt at %s events/s offered", count(int64(r.o.Rate))), "≤ 50 ms", main.LatencyMs.P99, "ms",
				func(v float64) bool { return v > 0 && v <= 50 })
		}
	case "backlog":
		if b := rep.Backlog; b != nil {
			add("deliveries pending with receivers down", "1,000,000", float64(b.Pending), "", atLeast(1_000_000))
			add("peak RSS with the backlog", "< 300 MB", float64(b.PeakRSSWithBacklog)/1e6, "MB", func(v float64) bool { return v > 0 && v < 300 })
			add("backlog drain ÷ normal rate, new events flowing", "≥ 0.8", b.DrainRatio, "×", atLeast(0.8))
		}
	case "fairness":
		if f := rep.Fairness; f != nil {
			add("others with a 60/min webhook ÷ control", "≥ 0.9", f.LimitedRatio, "×", atLeast(0.9))
			add("others with a timing-out webhook ÷ control", "≥ 0.9", f.TimeoutRatio, "×", atLeast(0.9))
		}
	case "scale":
		if s := rep.Scale; s != nil {
			add(fmt.Sprintf("%s webhooks on %s accounts ÷ %d webhooks", count(int64(s.LargeWebhooks)), count(int64(s.LargeAccounts)), s.SmallWebhooks), "≥ 0.8 (cost < 20%)", s.Ratio, "×", atLeast(0.8))
		}
	case "nodes":
		if n := rep.Nodes; n != nil {
			add("PostgreSQL, one node: deliveries/s (mean of its two runs)", "≥ 5,000", n.OneMeanDeliveriesPerSec, "/s", atLeast(5_000))
			add(fmt.Sprintf("PostgreSQL, %d nodes ÷ one node", n.Nodes), "> 1", n.Ratio, "×", func(v float64) bool { return v > 1 })
		}
	}
}
