package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/event"
)

// tiny is a bench small enough for a test: a few hundred events, 2 webhooks, fan-out 2.
func tiny() Options {
	return Options{Events: 300, Webhooks: 2, Fanout: 2, Batch: 50, Payload: 300, Rate: 0, Baseline: true, Timeout: time.Minute}
}

func runBench(t *testing.T, o Options) (*Report, error) {
	t.Helper()
	var progress bytes.Buffer
	rep, err := Run(context.Background(), o, &progress)
	t.Logf("progress:\n%s", progress.String())
	if rep == nil {
		t.Fatalf("no report; error: %v", err)
	}
	return rep, err
}

func TestTinyRunCountsExactly(t *testing.T) {
	rep, err := runBench(t, tiny())
	if err != nil {
		t.Fatalf("run failed: %v\nchecks: %+v", err, rep.Checks)
	}
	if len(rep.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(rep.Runs))
	}
	m := rep.Runs[0]
	if m.Events != 300 || m.Deliveries != 600 || m.Requests != 600 || m.Duplicates != 0 || m.FailedOnPurpose != 0 {
		t.Errorf("events %d deliveries %d requests %d duplicates %d failed %d; want 300, 600, 600, 0, 0",
			m.Events, m.Deliveries, m.Requests, m.Duplicates, m.FailedOnPurpose)
	}
	if m.AttemptsPerDelivery != 1 {
		t.Errorf("attempts per delivery %v, want 1", m.AttemptsPerDelivery)
	}
	c := rep.Checks
	if !c.OK || c.Deliveries != 600 || c.Delivered != 600 || c.Missing != 0 || c.Duplicates != 0 || c.SignatureFailures != 0 || c.Problems != 0 {
		t.Errorf("checks = %+v", c)
	}
	if c.EngineAttempts != 600 || c.EngineAttemptsNoResponse != 0 || c.EngineDeferred != 0 {
		t.Errorf("the engine made %d attempts, %d without a response, %d deferrals; want 600, 0, 0", c.EngineAttempts, c.EngineAttemptsNoResponse, c.EngineDeferred)
	}
	// /proc/stat counts in ticks of 10 ms: a short run may see none of them busy.
	if mu := m.Machine; runtime.GOOS == "linux" && (mu == nil || mu.CoresBusy < 0 || mu.CoresBusy > float64(runtime.NumCPU())+0.01 || mu.StealShare < 0 || mu.StealShare > 1) {
		t.Errorf("machine CPU = %+v; want the cores busy read from /proc/stat", mu)
	}
	// 300 events took at least 3 publishes and the outcomes of 600 deliveries, all through the
	// embedded store's writer.
	if w := m.Writer; w == nil || w.Commits < 3 || w.WritesPerCommit < 1 || w.Busy <= 0 || w.CommitShare <= 0 || w.CommitShare > 1 ||
		w.SlowestCommitMs == nil {
		t.Errorf("store writer = %+v; want at least 3 commits of at least one write, busy and committing, the slowest timed", w)
	}
	if m.Webhooks != 2 || m.Accounts != 1 || m.Fanout != 2 {
		t.Errorf("layout %d webhooks %d accounts fan-out %d", m.Webhooks, m.Accounts, m.Fanout)
	}
	// Figures are present (never judged: speed is not asserted).
	if m.DeliveriesPerSec <= 0 || m.PublishEventsPerSec <= 0 || m.LatencyMs.Max <= 0 || m.LatencyMs.P50 > m.LatencyMs.P99 ||
		m.StoreBytes <= 0 || m.PeakRSSBytes <= 0 {
		t.Errorf("figures missing: %+v", m)
	}
	b, bb := rep.Baseline, rep.BaselineBefore
	if b == nil || b.Deliveries != 600 || b.Requests != 600 || b.DeliveriesPerSec <= 0 || b.When != baselineAfter {
		t.Errorf("baseline after = %+v", b)
	}
	// The throughput scenario also runs it before the pipeline, and the ratio is of their mean.
	if bb == nil || bb.Deliveries != 600 || bb.Requests != 600 || bb.DeliveriesPerSec <= 0 || bb.When != baselineBefore {
		t.Errorf("baseline before = %+v", bb)
	}
	if b != nil && bb != nil {
		if want := m.DeliveriesPerSec / ((b.DeliveriesPerSec + bb.DeliveriesPerSec) / 2); math.Abs(rep.RatioToBaseline-want) > 1e-9 {
			t.Errorf("ratio %v, want %v", rep.RatioToBaseline, want)
		}
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	for _, want := range []string{"deliveries/s", "p99", "attempts per delivery", "before the pipeline", "after the pipeline", "checks: passed"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestFailRateRetriesAndDeliversEverything(t *testing.T) {
	o := tiny()
	o.Events = 200
	o.FailRate = 0.3
	o.Baseline = false
	rep, err := runBench(t, o)
	if err != nil {
		t.Fatalf("run failed: %v\nchecks: %+v", err, rep.Checks)
	}
	m := rep.Runs[0]
	if m.AttemptsPerDelivery <= 1 {
		t.Errorf("attempts per delivery %v, want > 1", m.AttemptsPerDelivery)
	}
	if m.FailedOnPurpose == 0 || m.Requests != m.Deliveries+m.FailedOnPurpose {
		t.Errorf("requests %d = deliveries %d + answered 500 %d?", m.Requests, m.Deliveries, m.FailedOnPurpose)
	}
	if c := rep.Checks; !c.OK || c.Delivered != 400 || c.Missing != 0 {
		t.Errorf("checks = %+v", c)
	}
	// Every attempt reached a receiver here, so the engine's count is the receivers'.
	if c := rep.Checks; c.EngineAttempts != m.Requests || c.EngineAttemptsNoResponse != 0 {
		t.Errorf("the engine made %d attempts, %d without a response; the receivers got %d requests",
			c.EngineAttempts, c.EngineAttemptsNoResponse, m.Requests)
	}
	if rep.Baseline != nil {
		t.Errorf("baseline ran with Baseline false")
	}
}

func TestWrongSecretFailsWithSignatureError(t *testing.T) {
	o := tiny()
	o.Events = 50
	o.wrongSecrets = true
	rep, err := runBench(t, o)
	if err == nil {
		t.Fatal("run with wrong secrets succeeded")
	}
	if !strings.Contains(err.Error(), "signature") {
		t.Errorf("error %q does not mention the signature", err)
	}
	if rep.Checks.OK || rep.Checks.SignatureFailures == 0 {
		t.Errorf("checks = %+v", rep.Checks)
	}
	if rep.Baseline != nil {
		t.Error("baseline ran after a failed pipeline run")
	}
}

func TestCommandJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := Command(context.Background(), []string{"--events", "100", "--webhooks", "2", "--fanout", "2", "--batch", "25", "--json"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, stdout.String())
	}
	lookup := func(path string) any {
		var v any = got
		for _, k := range strings.Split(path, ".") {
			switch x := v.(type) {
			case map[string]any:
				v = x[k]
			case []any:
				if len(x) == 0 {
					return nil
				}
				v = x[0].(map[string]any)[k]
			default:
				return nil
			}
		}
		return v
	}
	for _, path := range []string{
		"scenario", "settings.events", "settings.webhooks", "settings.fanout", "settings.batch", "settings.rate", "settings.store",
		"settings.retrySchedule", "machine.cpus", "machine.go",
		"runs.publishEventsPerSec", "runs.deliveriesPerSec", "runs.deliveries", "runs.latencyMs.p50", "runs.latencyMs.p95",
		"runs.latencyMs.p99", "runs.latencyMs.max", "runs.attemptsPerDelivery", "runs.cpuSecondsPer1000", "runs.peakRssBytes",
		"runs.storeBytes", "baseline.deliveriesPerSec", "baselineBefore.deliveriesPerSec", "ratioToBaseline", "peakRssBytes", "targets", "checks.ok",
		"checks.missing", "checks.signatureFailures", "checks.engineAttempts", "checks.engineAttemptsNoResponse",
	} {
		if lookup(path) == nil {
			t.Errorf("JSON lacks %s", path)
		}
	}
	if lookup("scenario") != "throughput" || lookup("checks.ok") != true || lookup("runs.deliveries") != float64(200) || lookup("settings.events") != float64(100) {
		t.Errorf("JSON: scenario %v, checks.ok %v, deliveries %v, events %v", lookup("scenario"), lookup("checks.ok"), lookup("runs.deliveries"), lookup("settings.events"))
	}
	if !strings.Contains(stderr.String(), "delivered") && !strings.Contains(stderr.String(), "deliveries/s") {
		t.Errorf("no progress on stderr: %q", stderr.String())
	}
}

func TestScenariosRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, o := range []Options{
		{Scenario: "latency", Events: 200, Webhooks: 2, Fanout: 2, Rate: 2000, Baseline: false},
		{Scenario: "publish", Events: 200, Webhooks: 2, Fanout: 2, Rate: 0, Baseline: false, MemProfile: "allocs.prof"},
		{Scenario: "backlog", Events: 200, Webhooks: 2, Fanout: 2, Rate: 2000, Baseline: false},
		{Scenario: "fairness", Events: 200, Webhooks: 2, Fanout: 2, Rate: 0, DeliveryTimeout: time.Second, Baseline: false},
		{Scenario: "scale", Events: 200, Webhooks: 20, Accounts: 2, Fanout: 5, Rate: 0, Baseline: false},
	} {
		t.Run(o.Scenario, func(t *testing.T) {
			o.Timeout = time.Minute
			if o.MemProfile != "" {
				o.MemProfile = filepath.Join(t.TempDir(), o.MemProfile)
			}
			rep, err := runBench(t, o)
			if err != nil {
				t.Fatalf("%s: %v\nchecks: %+v", o.Scenario, err, rep.Checks)
			}
			if !rep.Checks.OK || rep.Checks.Missing != 0 || len(rep.Targets) == 0 {
				t.Errorf("checks %+v, targets %+v", rep.Checks, rep.Targets)
			}
			switch o.Scenario {
			case "backlog":
				b := rep.Backlog
				if b == nil || b.Pending != 400 || b.DrainDeliveriesPerSec <= 0 || b.NormalDeliveriesPerSec <= 0 {
					t.Errorf("backlog = %+v", b)
				}
			case "fairness":
				f := rep.Fairness
				if f == nil || len(rep.Runs) != 4 || f.ControlDeliveriesPerSec <= 0 || f.ControlAfterDeliveriesPerSec <= 0 ||
					f.LimitedWebhook.Limit != 60 || f.LimitedWebhook.Requests > 60 || f.TimeoutWebhook.Requests == 0 ||
					f.TimeoutRatio != f.TimeoutDeliveriesPerSec/((f.ControlDeliveriesPerSec+f.ControlAfterDeliveriesPerSec)/2) {
					t.Errorf("fairness = %+v", f)
				}
			case "scale":
				s := rep.Scale
				if s == nil || len(rep.Runs) != 3 || s.SmallWebhooks != 10 || s.LargeWebhooks != 20 || s.LargeAccounts != 2 ||
					s.SmallAfterDeliveriesPerSec <= 0 || s.Ratio != s.LargeDeliveriesPerSec/((s.SmallDeliveriesPerSec+s.SmallAfterDeliveriesPerSec)/2) {
					t.Errorf("scale = %+v", s)
				}
			case "publish":
				if fi, err := os.Stat(o.MemProfile); err != nil || fi.Size() == 0 {
					t.Errorf("--memprofile: %v", err)
				}
				r := rep.Runs[0]
				if len(rep.Runs) != 1 || r.PublishEventsPerSec <= 0 || r.PublishCPUSeconds <= 0 || r.Deliveries != 400 || r.CPUSeconds != 0 ||
					rep.Targets[0].Value != r.PublishEventsPerSec {
					t.Errorf("publish run = %+v, targets %+v", r, rep.Targets)
				}
			case "latency":
				if rep.Runs[0].OfferedRate != 2000 || rep.Runs[0].Deliveries != 400 {
					t.Errorf("latency run = %+v", rep.Runs[0])
				}
			}
		})
	}
}

func TestBodiesAreWhatTheServerDelivers(t *testing.T) {
	lay, err := newLayout(8, 1, 2) // one account, all four event types
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		for _, payload := range []int{0, 256, 2000} {
			b := lay.appendBody(nil, i, payload)
			got, err := event.Normalize(lay.groups[lay.groupOf(i)].typ, b)
			if err != nil {
				t.Fatalf("event %d: %v: %s", i, err, b)
			}
			if !bytes.Equal(got, b) {
				t.Errorf("event %d: normalised body differs:\n%s\n%s", i, b, got)
			}
			if payload > 300 && (len(b) < payload-2 || len(b) > payload+2) {
				t.Errorf("event %d: body of %d bytes for payload %d", i, len(b), payload)
			}
			if n := eventIndex(b, lay.groups[lay.groupOf(i)].typ); n != i {
				t.Errorf("eventIndex = %d, want %d", n, i)
			}
		}
	}
}

func TestLayout(t *testing.T) {
	l, err := newLayout(10_000, 1_000, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.groups) != 2000 || l.accounts != 1000 || l.webhooks() != 10_000 {
		t.Errorf("groups %d accounts %d", len(l.groups), l.accounts)
	}
	seen := map[group]bool{}
	for _, g := range l.groups {
		if seen[g] {
			t.Fatalf("group %+v twice", g)
		}
		seen[g] = true
	}
	if l, err := newLayout(10, 0, 2); err != nil || l.accounts != 2 {
		t.Errorf("auto accounts: %v %v", l, err)
	}
	for _, c := range [][3]int{{10, 1, 3}, {10, 1, 1}, {10, 20, 1}} {
		if _, err := newLayout(c[0], c[1], c[2]); err == nil {
			t.Errorf("layout %v accepted", c)
		}
	}
}

func TestFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if _, err := ParseFlags([]string{"--help"}, &out, &errb); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, s := range append(Scenarios, "--fail-rate", "--latency", "--payload", "--nodes", "--database-url", "--data-dir",
		"--retry-schedule", "--baseline", "--json", "--cpuprofile", "--memprofile", "--publishers", "--batch", "--rate", "--receivers", "--accounts", "--fanout") {
		if !strings.Contains(out.String(), strings.TrimPrefix(s, "-")) {
			t.Errorf("help lacks %s", s)
		}
	}
	o, err := ParseFlags([]string{"--scenario", "latency", "--retry-schedule", "1s,2s", "--baseline=false", "--set", "log-level=info"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o = o.withDefaults()
	if o.Rate != 2000 || o.Batch != 20 || o.Events != 100_000 || len(o.RetrySchedule) != 2 || o.Baseline || o.check() != nil {
		t.Errorf("latency defaults: %+v (%v)", o, o.check())
	}
	for _, bad := range [][]string{
		{"--scenario", "nope"}, {"--webhooks", "5", "--fanout", "2"}, {"--nodes", "3"}, {"--fail-rate", "2"},
		{"--batch", "1000", "--payload", "100000"}, {"--set", "addr=:1"}, {"--set", "nope=1"},
	} {
		o, err := ParseFlags(bad, io.Discard, io.Discard)
		if err == nil {
			o = o.withDefaults()
			err = o.check()
		}
		if err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestDatabaseURLErrorIsReported(t *testing.T) {
	o := tiny()
	o.DatabaseURL = "postgres://bench@127.0.0.1:1/none?connect_timeout=1"
	_, err := Run(context.Background(), o, io.Discard)
	if err == nil {
		t.Fatal("run on an unreachable database succeeded")
	}
	if !strings.Contains(err.Error(), "PostgreSQL") {
		t.Errorf("error %q does not say PostgreSQL", err)
	}
}

func TestDuplicatesExplainedOnlyByRetries(t *testing.T) {
	lay, err := newLayout(2, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTracker(lay, 0, time.Now(), []int{3})
	tr.delivered200(0, &tr.pairs[0], 1) // event 0, slot 0: once
	tr.delivered200(0, &tr.pairs[1], 1) // event 0, slot 1: attempt 1, then a retry answered 200 too
	tr.delivered200(0, &tr.pairs[1], 2)
	tr.delivered200(1, &tr.pairs[2], 1) // event 1, slot 0: attempt 1 twice
	tr.delivered200(1, &tr.pairs[2], 1)
	s := tr.collect(0, 3, false)
	if s.pairs != 6 || s.delivered != 3 || s.missing != 3 || s.duplicates != 2 || s.unexplained != 1 {
		t.Errorf("pairs %d delivered %d missing %d duplicates %d unexplained %d; want 6 3 3 2 1",
			s.pairs, s.delivered, s.missing, s.duplicates, s.unexplained)
	}
}

// TestTargetsByStore: a throughput run is judged by the embedded store's targets, or on
// PostgreSQL by its own: one node ≥ 5,000 deliveries/s; several nodes against one, which takes
// a second invocation.
func TestTargetsByStore(t *testing.T) {
	for _, tc := range []struct {
		url   string
		nodes int
		want  []string
		note  bool
	}{
		{"", 1, []string{"deliveries/s end to end", "pipeline ÷ baseline"}, false},
		{"postgres://x", 1, []string{"PostgreSQL, one node: deliveries/s"}, false},
		{"postgres://x", 3, nil, true},
	} {
		r := &runner{o: Options{DatabaseURL: tc.url, Nodes: tc.nodes}, rep: &Report{Scenario: "throughput",
			Runs: []RunReport{{DeliveriesPerSec: 6_000}}, RatioToBaseline: 0.4, Targets: []Target{}, Notes: []string{}}}
		r.targets()
		var got []string
		for _, tg := range r.rep.Targets {
			got = append(got, tg.Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q, %d nodes: targets %q, want %q", tc.url, tc.nodes, got, tc.want)
		}
		if tc.url == "postgres://x" && tc.nodes == 1 && !r.rep.Targets[0].Met {
			t.Errorf("one PostgreSQL node at 6,000/s: target not met")
		}
		hasNote := slices.ContainsFunc(r.rep.Notes, func(n string) bool { return strings.Contains(n, "--nodes 1") })
		if hasNote != tc.note {
			t.Errorf("%q, %d nodes: notes %q", tc.url, tc.nodes, r.rep.Notes)
		}
	}
}
