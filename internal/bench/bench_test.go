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
	"github.com/hookrelay/hookrelay/internal/store/postgres/pgtest"
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
		{Scenario: "latency", Events: 200, Webhooks: 2, Fanout: 2, Rate: 2000, Baseline: false, CPUProfile: "cpu.prof"},
		{Scenario: "publish", Events: 200, Webhooks: 2, Fanout: 2, Rate: 0, Baseline: false, MemProfile: "allocs.prof"},
		{Scenario: "backlog", Events: 200, Webhooks: 2, Fanout: 2, Rate: 2000, Baseline: false},
		{Scenario: "fairness", Events: 200, Webhooks: 2, Fanout: 2, Rate: 0, DeliveryTimeout: time.Second, Baseline: false},
		{Scenario: "scale", Events: 200, Webhooks: 20, Accounts: 2, Fanout: 5, Rate: 0, Baseline: false, CPUProfile: "cpu.prof"},
	} {
		t.Run(o.Scenario, func(t *testing.T) {
			o.Timeout = time.Minute
			dir := t.TempDir()
			if o.MemProfile != "" {
				o.MemProfile = filepath.Join(dir, o.MemProfile)
			}
			if o.CPUProfile != "" {
				o.CPUProfile = filepath.Join(dir, o.CPUProfile)
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
				// Every run on the small runs' 10 receivers, not one per webhook (16 at most).
				if s == nil || len(rep.Runs) != 3 || s.SmallWebhooks != 10 || s.LargeWebhooks != 20 || s.LargeAccounts != 2 || rep.Settings.Receivers != 10 ||
					s.SmallAfterDeliveriesPerSec <= 0 || s.Ratio != s.LargeDeliveriesPerSec/((s.SmallDeliveriesPerSec+s.SmallAfterDeliveriesPerSec)/2) {
					t.Errorf("scale = %+v", s)
				}
				// A CPU profile of each run's measured phase, named after the run.
				profiles, _ := filepath.Glob(filepath.Join(dir, "*.prof"))
				for k, name := range []string{"cpu-large.prof", "cpu-small-after.prof", "cpu-small.prof"} {
					if len(profiles) != 3 || filepath.Base(profiles[k]) != name {
						t.Fatalf("CPU profiles %q; want cpu-large.prof, cpu-small-after.prof and cpu-small.prof", profiles)
					}
					if fi, err := os.Stat(profiles[k]); err != nil || fi.Size() == 0 {
						t.Errorf("%s: %v, %v", name, fi, err)
					}
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
				if fi, err := os.Stat(o.CPUProfile); err != nil || fi.Size() == 0 {
					t.Errorf("--cpuprofile of the one run: %v", err)
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
		"--retry-schedule", "--baseline", "--json", "--rounds", "--cpuprofile", "--memprofile", "--publishers", "--batch", "--rate", "--receivers", "--accounts", "--fanout") {
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
		{"--rounds", "-1"}, {"--rounds", "101"}, {"--rounds", "2", "--cpuprofile", "cpu.prof"}, {"--rounds", "2", "--memprofile", "mem.prof"},
		{"--scenario", "nodes"}, {"--scenario", "nodes", "--database-url", "postgres://x", "--nodes", "1"},
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
// PostgreSQL by its own: one node ≥ 5,000 deliveries/s; several nodes against one, which the
// nodes scenario compares.
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
		hasNote := slices.ContainsFunc(r.rep.Notes, func(n string) bool { return strings.Contains(n, "--scenario nodes") })
		if hasNote != tc.note {
			t.Errorf("%q, %d nodes: notes %q", tc.url, tc.nodes, r.rep.Notes)
		}
	}
}

// TestRoundsJudgeTheMedian: with rounds, each target's value is the median of the rounds'
// (the mean of the middle two for an even count), judged by the target's own rule, and the
// checks add up over the rounds.
func TestRoundsJudgeTheMedian(t *testing.T) {
	round := func(perSec, ratio float64, ok bool, errs ...string) *Report {
		r := &runner{o: Options{Nodes: 1}, rep: &Report{Scenario: "throughput", Runs: []RunReport{{DeliveriesPerSec: perSec}},
			RatioToBaseline: ratio, Targets: []Target{}, Notes: []string{"a note"}, PeakRSSBytes: int64(perSec)}}
		r.targets()
		r.rep.Checks = Checks{OK: ok, Delivered: 100, Missing: int64(len(errs)), Errors: errs}
		return r.rep
	}
	for _, tc := range []struct {
		rounds       []*Report
		perSec       float64
		perSecMet    bool
		ratio        float64
		ratioMet     bool
		metPerSec    int
		checksOK     bool
		errs         []string
		peakRSSBytes int64
	}{
		// Odd: the middle one. Two of three rounds meet 10,000/s, and so does the median.
		{[]*Report{round(12_000, 0.45, true), round(8_000, 0.55, true), round(10_500, 0.52, true)}, 10_500, true, 0.52, true, 2, true, nil, 12_000},
		// Even: the mean of the middle two, 9,900/s, not met though two rounds of four are.
		{[]*Report{round(9_800, 0.5, true), round(15_000, 0.4, true), round(10_000, 0.49, true), round(5_000, 0.6, false, "x")},
			9_900, false, 0.495, false, 2, false, []string{"round 4: x"}, 15_000},
	} {
		rep := combine(tc.rounds)
		if len(rep.Rounds) != len(tc.rounds) || len(rep.Targets) != 2 || len(rep.Runs) != 0 {
			t.Fatalf("rounds %d, targets %+v, runs %d", len(rep.Rounds), rep.Targets, len(rep.Runs))
		}
		ps, ra := rep.Targets[0], rep.Targets[1]
		if ps.Value != tc.perSec || ps.Met != tc.perSecMet || ps.MetRounds != tc.metPerSec || len(ps.Rounds) != len(tc.rounds) {
			t.Errorf("deliveries/s target %+v, want median %v met %v in %d rounds", ps, tc.perSec, tc.perSecMet, tc.metPerSec)
		}
		if math.Abs(ra.Value-tc.ratio) > 1e-9 || ra.Met != tc.ratioMet {
			t.Errorf("ratio target %+v, want median %v met %v", ra, tc.ratio, tc.ratioMet)
		}
		c := rep.Checks
		if c.OK != tc.checksOK || c.Delivered != int64(100*len(tc.rounds)) || strings.Join(c.Errors, "|") != strings.Join(tc.errs, "|") {
			t.Errorf("checks %+v, want ok %v, delivered %d, errors %q", c, tc.checksOK, 100*len(tc.rounds), tc.errs)
		}
		if rep.PeakRSSBytes != tc.peakRSSBytes || slices.Index(rep.Notes, "a note") < 0 || len(rep.Notes) != 2 {
			t.Errorf("peak RSS %d (want %d), notes %q", rep.PeakRSSBytes, tc.peakRSSBytes, rep.Notes)
		}
	}
	if combine(nil) != nil {
		t.Error("combine(nil) is not nil")
	}
}

// TestRoundsRun: --rounds 2 runs the scenario twice, each round with its own data directory
// under --data-dir, and reports both.
func TestRoundsRun(t *testing.T) {
	o := tiny()
	o.Events, o.Rounds, o.Baseline = 100, 2, false
	o.DataDir = filepath.Join(t.TempDir(), "data")
	rep, err := runBench(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rounds) != 2 || rep.Checks.Delivered != 400 || !rep.Checks.OK || rep.Targets[0].Name != "deliveries/s end to end" ||
		rep.Targets[0].Value != median([]float64{rep.Rounds[0].Runs[0].DeliveriesPerSec, rep.Rounds[1].Runs[0].DeliveriesPerSec}) {
		t.Errorf("rounds %d, checks %+v, targets %+v", len(rep.Rounds), rep.Checks, rep.Targets)
	}
	for _, d := range []string{"round-1", "round-2"} {
		if _, err := os.Stat(filepath.Join(o.DataDir, d, "main")); err != nil {
			t.Errorf("data dir of %s: %v", d, err)
		}
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	for _, want := range []string{"round 1 of 2", "round 2 of 2", "median of the 2 rounds", "met in"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if _, err := Run(context.Background(), o, io.Discard); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("rounds into a used --data-dir: %v", err)
	}
}

// TestNodesScenario runs one node, three nodes and one node again on PostgreSQL and compares
// the nodes with the mean of the one-node runs.
func TestNodesScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	o := tiny()
	o.Scenario, o.DatabaseURL, o.Baseline = "nodes", pgtest.SchemaURL(t), false
	rep, err := runBench(t, o)
	if err != nil {
		t.Fatalf("%v\nchecks: %+v", err, rep.Checks)
	}
	n := rep.Nodes
	if n == nil || len(rep.Runs) != 3 || !rep.Checks.OK || rep.Checks.Delivered != 3*600 {
		t.Fatalf("nodes %+v, runs %d, checks %+v", n, len(rep.Runs), rep.Checks)
	}
	for i, want := range []int{1, 3, 1} {
		if rep.Runs[i].Nodes != want {
			t.Errorf("run %s: %d nodes, want %d", rep.Runs[i].Name, rep.Runs[i].Nodes, want)
		}
	}
	mean := (rep.Runs[0].DeliveriesPerSec + rep.Runs[2].DeliveriesPerSec) / 2
	if n.Nodes != 3 || n.OneMeanDeliveriesPerSec != mean || n.NodesDeliveriesPerSec != rep.Runs[1].DeliveriesPerSec ||
		n.Ratio != n.NodesDeliveriesPerSec/mean {
		t.Errorf("nodes = %+v; runs %v, %v, %v", n, rep.Runs[0].DeliveriesPerSec, rep.Runs[1].DeliveriesPerSec, rep.Runs[2].DeliveriesPerSec)
	}
	if len(rep.Targets) != 2 || rep.Targets[1].Value != n.Ratio || rep.Targets[1].Met != (n.Ratio > 1) {
		t.Errorf("targets %+v", rep.Targets)
	}
}

// TestInFlightBoundNoted: receivers that answer slowly leave a node at its bound on attempts
// in flight with the CPU idle; the run's report says for how much of it, and a note names the
// setting. The baseline gets the same bounds.
func TestInFlightBoundNoted(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the machine's CPU is read from /proc/stat")
	}
	o := tiny()
	o.Events, o.Latency, o.Baseline = 100, 50*time.Millisecond, false
	o.ServerSettings = []string{"max-in-flight=4"}
	rep, err := runBench(t, o)
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	if b := rep.Runs[0].InFlightBound; b < 0.5 {
		t.Errorf("in-flight bound held the run %.0f%% of the time, want most: 4 in flight to receivers answering in 50 ms", b*100)
	}
	if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "(--max-in-flight 4), not the CPU") }) {
		t.Errorf("no note on the bound: %q", rep.Notes)
	}

	for _, tt := range []struct {
		set  []string
		want int
	}{
		{nil, 128}, // 2 webhooks × 64
		{[]string{"max-in-flight=100"}, 100},
		{[]string{"max-in-flight-per-webhook=8"}, 16},
	} {
		o := Options{Latency: time.Millisecond, Webhooks: 2, Fanout: 2, ServerSettings: tt.set}.withDefaults()
		if o.BaselineWorkers != tt.want {
			t.Errorf("--set %v: baseline workers %d, want %d", tt.set, o.BaselineWorkers, tt.want)
		}
	}
}
