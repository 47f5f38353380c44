package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/internal/config"
	"github.com/hookrelay/hookrelay/internal/event"
)

// Scenarios lists the scenarios, the default first.
var Scenarios = []string{"throughput", "latency", "publish", "backlog", "fairness", "scale", "nodes"}

// Options are the settings of one bench invocation. Zero values of the fields marked "0 =
// scenario default" take the scenario's default (see Defaults).
type Options struct {
	Scenario string `json:"scenario"`

	Events     int `json:"events"`     // events published (0 = scenario default)
	Webhooks   int `json:"webhooks"`   // webhooks (0 = scenario default)
	Accounts   int `json:"accounts"`   // accounts (0 = the fewest that fit)
	Fanout     int `json:"fanout"`     // webhooks each event is delivered to (0 = scenario default)
	Publishers int `json:"publishers"` // concurrent publish requests (as fast as possible), or the most outstanding (at a rate)
	Batch      int `json:"batch"`      // events per POST /v3/events/batch (0 = scenario default)
	// Rate is the offered load in events/s: 0 = as fast as possible, -1 = the scenario's default.
	Rate      float64       `json:"rate"`
	FailRate  float64       `json:"failRate"`  // probability a receiver answers 500
	Latency   time.Duration `json:"latencyNs"` // added to every receiver answer
	Payload   int           `json:"payload"`   // approximate size of an event's data in bytes
	Receivers int           `json:"receivers"` // receiver servers (0 = one per webhook, at most 16; scale: the small runs' webhooks)

	Nodes       int    `json:"nodes"` // 0 = scenario default: 1; nodes 3
	DatabaseURL string `json:"-"`
	DataDir     string `json:"dataDir,omitempty"` // "" = a temp dir removed afterwards

	RetrySchedule   []time.Duration `json:"retryScheduleNs"`
	DeliveryTimeout time.Duration   `json:"deliveryTimeoutNs"` // 0 = scenario default
	// ServerSettings are extra server settings as flag=value (a flag of `hookrelay serve` that
	// the bench does not set itself).
	ServerSettings []string `json:"serverSettings,omitempty"`

	Baseline        bool `json:"baseline"`
	BaselineWorkers int  `json:"baselineWorkers"` // 0 = 32, or the engine's bounds when receivers add latency
	BaselineMax     int  `json:"baselineMax"`     // most deliveries the baseline sends (0 = 200,000)

	// Rounds is how many times the scenario runs; its targets are judged on the median of the
	// rounds' figures (1: the one round's).
	Rounds int `json:"rounds"`

	Timeout    time.Duration `json:"timeoutNs"` // longest wait for a run's deliveries
	CPUProfile string        `json:"cpuProfile,omitempty"`
	MemProfile string        `json:"memProfile,omitempty"`
	JSON       bool          `json:"json"`

	// wrongSecrets makes the receivers verify against secrets that are not the webhooks' (tests).
	wrongSecrets bool
}

// Defaults returns the options with the scenario's defaults filled in where o leaves them unset.
func (o Options) withDefaults() Options {
	if o.Scenario == "" {
		o.Scenario = "throughput"
	}
	type def struct {
		events, webhooks, accounts, fanout, batch int
		rate                                      float64
		timeout                                   time.Duration
	}
	d := map[string]def{
		"throughput": {50_000, 10, 0, 2, 100, 0, 15 * time.Second},
		"latency":    {100_000, 10, 0, 2, 20, 2000, 15 * time.Second},
		"publish":    {200_000, 10, 0, 2, 100, 0, 5 * time.Minute},
		"backlog":    {500_000, 10, 0, 2, 100, 1000, 5 * time.Minute},
		"fairness":   {20_000, 10, 0, 2, 100, 0, 500 * time.Millisecond},
		"scale":      {20_000, 10_000, 1_000, 5, 100, 0, 15 * time.Second},
		"nodes":      {50_000, 10, 0, 2, 100, 0, 15 * time.Second},
	}[o.Scenario]
	if o.Events == 0 {
		o.Events = d.events
	}
	if o.Webhooks == 0 {
		o.Webhooks = d.webhooks
	}
	if o.Accounts == 0 && o.Webhooks == d.webhooks {
		o.Accounts = d.accounts
	}
	if o.Fanout == 0 {
		o.Fanout = d.fanout
	}
	if o.Batch == 0 {
		o.Batch = d.batch
	}
	if o.Rate < 0 {
		o.Rate = d.rate
	}
	if o.DeliveryTimeout == 0 {
		o.DeliveryTimeout = d.timeout
	}
	if o.Publishers == 0 {
		o.Publishers = 4
	}
	if o.Nodes == 0 {
		o.Nodes = 1
		if o.Scenario == "nodes" {
			o.Nodes = 3
		}
	}
	if o.Rounds == 0 {
		o.Rounds = 1
	}
	if o.RetrySchedule == nil {
		o.RetrySchedule = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	}
	if o.BaselineMax == 0 {
		o.BaselineMax = 200_000
	}
	if o.BaselineWorkers == 0 {
		// Measured on the 2-core machine: 16 to 32 goroutines move the most POSTs over
		// loopback; more only add scheduling. With receiver latency, throughput is
		// concurrency ÷ latency, so the baseline gets the engine's bounds: 64 per webhook,
		// 512 in all, or what --set gives them.
		o.BaselineWorkers = 32
		if o.Latency > 0 {
			// A bad --set leaves 32: check reports it, and nothing runs.
			if cfg, err := o.serverConfig(); err == nil {
				o.BaselineWorkers = min(cfg.MaxInFlight, cfg.MaxInFlightPerWebhook*max(1, o.Webhooks))
			}
		}
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Minute
	}
	return o
}

// check reports the first setting that cannot work.
func (o Options) check() error {
	switch {
	case !slices.Contains(Scenarios, o.Scenario):
		return fmt.Errorf("--scenario must be one of %s", strings.Join(Scenarios, ", "))
	case o.Events < 1:
		return errors.New("--events must be at least 1")
	case o.Fanout < 1:
		return errors.New("--fanout must be at least 1")
	case o.Publishers < 1:
		return errors.New("--publishers must be at least 1")
	case o.Batch < 1 || o.Batch > 1000:
		return errors.New("--batch must be 1 to 1000 (the API's limit)")
	case o.Rate < 0 || math.IsInf(o.Rate, 0) || math.IsNaN(o.Rate):
		return errors.New("--rate must be 0 (as fast as possible) or a positive number of events/s")
	case o.FailRate < 0 || o.FailRate > 1 || math.IsNaN(o.FailRate):
		return errors.New("--fail-rate must be from 0 to 1")
	case o.Latency < 0:
		return errors.New("--latency must not be negative")
	case o.Payload < 0 || o.Payload > event.MaxDataSize-1024:
		return fmt.Errorf("--payload must be 0 to %d bytes", event.MaxDataSize-1024)
	case o.Receivers < 0:
		return errors.New("--receivers must not be negative")
	case o.Nodes < 1:
		return errors.New("--nodes must be at least 1")
	case o.Scenario == "nodes" && o.DatabaseURL == "":
		return errors.New("--scenario nodes needs --database-url: several nodes share a PostgreSQL database")
	case o.Nodes > 1 && o.DatabaseURL == "":
		return errors.New("--nodes above 1 needs --database-url: the embedded store belongs to one process")
	case o.Scenario == "nodes" && o.Nodes < 2:
		return errors.New("--scenario nodes compares --nodes (at least 2) with one node")
	case o.Rounds < 1 || o.Rounds > 100:
		return errors.New("--rounds must be 1 to 100")
	case o.Rounds > 1 && (o.CPUProfile != "" || o.MemProfile != ""):
		return errors.New("--cpuprofile and --memprofile profile one round: leave --rounds at 1")
	case o.DeliveryTimeout <= 0:
		return errors.New("--delivery-timeout must be positive")
	case len(o.RetrySchedule) > 50:
		return errors.New("--retry-schedule must have at most 50 retries")
	case o.BaselineWorkers < 1:
		return errors.New("--baseline-workers must be at least 1")
	case o.Timeout <= 0:
		return errors.New("--timeout must be positive")
	}
	// 1 MiB request bodies: each event costs its data plus about 100 bytes of envelope.
	if est := o.Batch * (max(o.Payload, 160) + 110); est > 1<<20-1024 {
		return fmt.Errorf("--batch %d of --payload %d bytes makes publish requests of about %d bytes, above the API's 1 MiB: use a smaller --batch",
			o.Batch, o.Payload, est)
	}
	if o.Scenario == "backlog" && o.Events < 10 {
		return errors.New("--events must be at least 10 for the backlog scenario")
	}
	if _, err := newLayout(o.Webhooks, o.Accounts, o.Fanout); err != nil {
		return err
	}
	if o.Scenario == "scale" {
		if _, err := newLayout(smallWebhooks(o.Fanout), 0, o.Fanout); err != nil {
			return fmt.Errorf("scale scenario, small run: %w", err)
		}
	}
	return nil
}

// smallWebhooks is the webhook count of the scale scenario's small run: 10, or the fan-out if
// larger, rounded to a multiple of the fan-out.
func smallWebhooks(fanout int) int {
	return max(1, (10+fanout-1)/fanout) * fanout
}

const usageHead = `hookrelay bench measures the delivery pipeline end to end.

Usage:
  hookrelay bench [flags]

It starts the real pipeline in this process (the embedded store in a temporary directory, or
--database-url), local receivers that verify every signature, publishes events through
POST /v3/events/batch, waits for every delivery, checks that each arrived once with a valid
signature and the published body, and reports. Then, on the same receivers, it runs the
baseline: the same signed POSTs sent straight from memory (no store, no queue), and reports
the pipeline's throughput as a ratio of it. The throughput scenario runs the baseline before
the pipeline too and takes the ratio of their mean, so that a machine's drift during the run
counts less. It exits non-zero if any check fails.

Scenarios (--scenario; each sets up what its target needs and reports what it is judged by):
  throughput  --events (50,000) as fast as possible, fan-out 2. Judged by deliveries/s
              (≥ 10,000) and ratio to baseline (≥ 0.5). Publishing competes with delivering
              for the cores here; its rate is reported, not judged. On --database-url: one
              node by deliveries/s (≥ 5,000); several nodes: see the nodes scenario.
  latency     open-loop offered load --rate (2,000 events/s), batches of 20, 100,000 events
              (50 s: its p99 rests on about 50 publish requests, not ten, so one stall of the
              machine moves it less). Judged by p99 publish→receipt (≤ 50 ms).
  publish     receivers down (requests held unanswered, delivery timeout 5m) while --events
              (200,000) are published as fast as possible, fan-out 2: every event and
              delivery is stored, none is sent. Judged by events/s accepted (≥ 50,000).
              Then receivers return and every delivery is checked. --cpuprofile covers the
              publishing only.
  backlog     normal phase (--events/10) for the normal rate; receivers down (requests held
              unanswered, delivery timeout 5m) while --events (500,000) are published: with
              fan-out 2, 1,000,000 deliveries pending; then receivers return while new events
              flow at --rate (1,000/s). Judged by peak RSS (< 300 MB) and backlog drain rate
              (≥ 0.8 × the normal rate).
  fairness    four fresh runs: control; plus a webhook limited to 60/min; plus a webhook that
              times out (delivery timeout 500ms); control again. Both extra webhooks get every
              event of the first (account, event type). Judged by the others' deliveries/s
              (≥ 0.9 × the mean of the controls').
  scale       three fresh runs, same events, fan-out (5) and receivers (10): 10 webhooks,
              then --webhooks (10,000) across --accounts (1,000), then 10 webhooks again.
              Judged by the large run's deliveries/s (≥ 0.8 × the mean of the small runs').
  nodes       PostgreSQL only (--database-url): three fresh runs of the throughput
              scenario on the same database: one node, then --nodes (3) nodes, then one
              node again. Judged by one node's deliveries/s (≥ 5,000, the mean of its two
              runs) and the nodes' deliveries/s (more than that mean).

--rounds N runs the scenario N times in one invocation and judges each target on the median
of the rounds' figures, reporting every round's: on a machine whose speed drifts from minute
to minute, one round says little. On PostgreSQL the rounds share the database (the first
should find it empty).

Layout: each (account, event type) is a group of --fanout webhooks; events go to the groups
in turn. --webhooks must be a multiple of --fanout, and an account holds at most 4 groups.

Figures: publish rate (events accepted/s); end to end (first publish sent → last first-200);
latency (publish request sent → first 200, per delivery); attempts per delivery (requests at
receivers ÷ deliveries); CPU s per 1,000 deliveries (getrusage self, user+sys, measured phase);
peak RSS (the run's own on Linux; elsewhere ru_maxrss, the process's so far); store size.
Receivers and publishers share the process: CPU and RSS include them. Store writer (embedded
store): share of the phase it was busy, writes per commit, share of its time committing; store
commits: how many took over 10 ms, and the slowest one's range. Machine CPU (Linux,
/proc/stat): cores busy over every process, PostgreSQL's included, and the share stolen by the
hypervisor. In-flight bound (Linux): the share of the run, looked at every 100 ms, in which a
node had --max-in-flight attempts in flight and more deliveries waiting while the machine's
CPU was under 80% busy (receivers far away: raise the bounds with --set). After the checks,
the engines' own count of attempts over all runs, with those that got no response (transport
errors, timeouts), which never reach a receiver's count, and of deferrals to a later time.

Flags (a scenario's defaults apply to the flags not given):
`

// Command runs `hookrelay bench` with args; the report goes to stdout, progress and errors to
// stderr. It returns flag.ErrHelp after --help, and an error when a setting is wrong, the
// pipeline cannot run or a check fails.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := ParseFlags(args, stdout, stderr)
	if err != nil {
		return err
	}
	rep, err := Run(ctx, o, stderr)
	if rep != nil {
		if o.JSON {
			if e := rep.WriteJSON(stdout); e != nil && err == nil {
				err = e
			}
		} else {
			rep.WriteTable(stdout)
		}
	}
	return err
}

// ParseFlags reads the bench's flags. Help goes to stdout, errors to stderr.
func ParseFlags(args []string, stdout, stderr io.Writer) (Options, error) {
	fs := flag.NewFlagSet("hookrelay bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(stdout)
		}
	}
	var o Options
	var retry, set string
	fs.StringVar(&o.Scenario, "scenario", "throughput", "what to measure: "+strings.Join(Scenarios, " | "))
	fs.IntVar(&o.Events, "events", 0, "events to publish (0 = scenario default: throughput 50000, latency 100000, backlog 500000, fairness 20000, scale 20000)")
	fs.IntVar(&o.Webhooks, "webhooks", 0, "webhooks (0 = scenario default: 10; scale 10000)")
	fs.IntVar(&o.Accounts, "accounts", 0, "accounts (0 = the fewest that fit: webhooks/fanout/4 rounded up; scale 1000)")
	fs.IntVar(&o.Fanout, "fanout", 0, "webhooks each event is delivered to (0 = scenario default: 2; scale 5)")
	fs.IntVar(&o.Publishers, "publishers", 4, "concurrent publish requests (as fast as possible); at a --rate, at least 64 may be outstanding")
	fs.IntVar(&o.Batch, "batch", 0, "events per POST /v3/events/batch, 1-1000 (0 = scenario default: 100; latency 20)")
	fs.Float64Var(&o.Rate, "rate", -1, "offered load in events/s: 0 = as fast as possible, -1 = the scenario's (latency 2000; backlog 1000, for the events that flow during the drain; others 0)")
	fs.Float64Var(&o.FailRate, "fail-rate", 0, "probability (0-1) that a receiver answers 500; never on the last attempt the retry schedule allows")
	fs.DurationVar(&o.Latency, "latency", 0, "added to every receiver answer (e.g. 5ms)")
	fs.IntVar(&o.Payload, "payload", 256, "approximate size of an event's data in bytes (padded with an extra field)")
	fs.IntVar(&o.Receivers, "receivers", 0, "receiver servers, webhooks spread over them (0 = one per webhook, at most 16; scale: as many as the small runs' webhooks)")
	fs.IntVar(&o.Nodes, "nodes", 0, "hookrelay servers in this process, on the same --database-url (0 = scenario default: 1; nodes 3)")
	fs.StringVar(&o.DatabaseURL, "database-url", "", "postgres://… to run on PostgreSQL (use an empty database); empty = embedded store")
	fs.StringVar(&o.DataDir, "data-dir", "", "embedded store directory, kept afterwards; must be empty or absent (default: a temp dir, removed)")
	fs.StringVar(&retry, "retry-schedule", "100ms,200ms,400ms", "the servers' retry schedule (delays before retry 1, 2, …)")
	fs.DurationVar(&o.DeliveryTimeout, "delivery-timeout", 0, "the servers' delivery timeout (0 = scenario default: 15s; backlog 5m; fairness 500ms)")
	fs.StringVar(&set, "set", "", "more server settings, comma-separated flag=value pairs of `hookrelay serve` (e.g. log-level=info)")
	fs.BoolVar(&o.Baseline, "baseline", true, "run the baseline after the pipeline, and for throughput before it too (--baseline=false skips it)")
	fs.IntVar(&o.BaselineWorkers, "baseline-workers", 0, "goroutines of the baseline (0 = 32; with --latency, the engine's bounds: --max-in-flight-per-webhook (64) per webhook, at most --max-in-flight (512), as --set gives them)")
	fs.IntVar(&o.BaselineMax, "baseline-max", 200_000, "most deliveries the baseline sends")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "longest wait for a run's deliveries; a run also stops after a minute without progress")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of each run's measured phase (not its set-up, not the baseline) to this file; a scenario of several runs writes one per run, named after it (cpu-large.prof); publish: the publishing; backlog: the whole scenario")
	fs.StringVar(&o.MemProfile, "memprofile", "", "write an allocation profile (go tool pprof -sample_index=alloc_space) to this file after the pipeline runs")
	fs.IntVar(&o.Rounds, "rounds", 1, "run the scenario this many times and judge its targets on the medians (1-100)")
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object instead of the table")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	sched, err := parseSchedule(retry)
	if err != nil {
		return o, fmt.Errorf("--retry-schedule: %w", err)
	}
	o.RetrySchedule = sched
	if set != "" {
		o.ServerSettings = strings.Split(set, ",")
	}
	if _, err := o.serverConfig(); err != nil {
		return o, err
	}
	return o, nil
}

func parseSchedule(s string) ([]time.Duration, error) {
	out := []time.Duration{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration", strings.TrimSpace(part))
		}
		out = append(out, d)
	}
	return out, nil
}

// benchOwned are the server settings the bench sets itself, with the bench flag to use instead.
var benchOwned = map[string]string{
	"addr": "", "admin-key": "", "allow-private-destinations": "",
	"data-dir": "; use the bench's --data-dir", "database-url": "; use the bench's --database-url",
	"retry-schedule": "; use the bench's --retry-schedule", "delivery-timeout": "; use the bench's --delivery-timeout",
}

// serverConfig is the configuration every server of the bench starts from: config.Default()
// with the --set settings applied (the environment is not read).
func (o Options) serverConfig() (config.Config, error) {
	fs := flag.NewFlagSet("set", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	build := config.Flags(fs, func(string) string { return "" })
	var args []string
	for _, kv := range o.ServerSettings {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		name, _, ok := strings.Cut(kv, "=")
		if !ok {
			return config.Config{}, fmt.Errorf("--set %q: want flag=value", kv)
		}
		if fs.Lookup(name) == nil {
			return config.Config{}, fmt.Errorf("--set %q: no server setting --%s (see hookrelay help)", kv, name)
		}
		if own, ok := benchOwned[name]; ok {
			return config.Config{}, fmt.Errorf("--set %q: the bench sets --%s itself%s", kv, name, own)
		}
		args = append(args, "--"+kv)
	}
	if err := fs.Parse(args); err != nil {
		return config.Config{}, fmt.Errorf("--set: %w", err)
	}
	cfg, err := build()
	if err != nil {
		return config.Config{}, fmt.Errorf("--set: %w", err)
	}
	return cfg, nil
}
