package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one bench invocation measured and checked. WriteJSON prints it as one
// JSON object with these field names; WriteTable prints it for people.
type Report struct {
	Scenario string   `json:"scenario"`
	Settings Settings `json:"settings"`
	Machine  Machine  `json:"machine"`
	// Runs are the pipeline runs (one, or one per phase or variant of the scenario).
	Runs []RunReport `json:"runs"`
	// Baseline ran after the pipeline, on the same receivers, bodies and secrets.
	Baseline *BaselineReport `json:"baseline,omitempty"`
	// BaselineBefore ran before it (throughput scenario), on the same receivers and bodies.
	BaselineBefore *BaselineReport `json:"baselineBefore,omitempty"`
	// RatioToBaseline is the main run's deliveries/s ÷ the baseline's (÷ the mean of the two
	// when it ran before and after).
	RatioToBaseline float64         `json:"ratioToBaseline,omitempty"`
	Backlog         *BacklogReport  `json:"backlog,omitempty"`
	Fairness        *FairnessReport `json:"fairness,omitempty"`
	Scale           *ScaleReport    `json:"scale,omitempty"`
	Nodes           *NodesReport    `json:"nodes,omitempty"`
	// Targets are judged on this round's figures, or with --rounds above 1 on the medians
	// of the rounds'.
	Targets []Target `json:"targets"`
	// Rounds are the rounds' own reports, with --rounds above 1 (then Runs is empty).
	Rounds []*Report `json:"rounds,omitempty"`
	// PeakRSSBytes is the largest peak RSS of the pipeline runs (baseline excluded).
	PeakRSSBytes int64    `json:"peakRssBytes"`
	Checks       Checks   `json:"checks"`
	Notes        []string `json:"notes"`
	// Error is why the invocation failed, if it did.
	Error string `json:"error,omitempty"`
}

// Settings are the settings the bench ran with, scenario defaults applied.
type Settings struct {
	Scenario        string   `json:"scenario"`
	Events          int      `json:"events"`
	Webhooks        int      `json:"webhooks"`
	Accounts        int      `json:"accounts"`
	Fanout          int      `json:"fanout"`
	Publishers      int      `json:"publishers"`
	Batch           int      `json:"batch"`
	Rate            float64  `json:"rate"` // events/s offered; 0 = as fast as possible
	FailRate        float64  `json:"failRate"`
	LatencyMs       float64  `json:"latencyMs"` // added by receivers
	Payload         int      `json:"payload"`
	Receivers       int      `json:"receivers"`
	Nodes           int      `json:"nodes"`
	Store           string   `json:"store"` // "embedded" or "postgres"
	DataDir         string   `json:"dataDir,omitempty"`
	RetrySchedule   []string `json:"retrySchedule"`
	DeliveryTimeout string   `json:"deliveryTimeout"`
	ServerSettings  []string `json:"serverSettings,omitempty"`
	Baseline        bool     `json:"baseline"`
	BaselineWorkers int      `json:"baselineWorkers"`
	BaselineMax     int      `json:"baselineMax"`
	Rounds          int      `json:"rounds"`
}

// Machine says where the figures come from.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Go         string `json:"go"`
	Hookrelay  string `json:"hookrelay"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute load when the bench started (Linux): work
	// of other processes shows there.
	LoadAvg string `json:"loadAvg,omitempty"`
}

// RunReport holds one pipeline run's figures.
type RunReport struct {
	Name     string `json:"name"`
	Webhooks int    `json:"webhooks"`
	Accounts int    `json:"accounts"`
	Fanout   int    `json:"fanout"`
	Nodes    int    `json:"nodes"`
	// Events published in this run (or phase) and the deliveries they require.
	Events     int   `json:"events"`
	Deliveries int64 `json:"deliveries"`
	// OfferedRate is the events/s offered (0 = as fast as possible).
	OfferedRate float64 `json:"offeredRate"`
	// Publishing: first request sent → last answer received.
	PublishSeconds      float64 `json:"publishSeconds"`
	PublishEventsPerSec float64 `json:"publishEventsPerSec"`
	PublishRequestMs    Latency `json:"publishRequestMs"`
	// CPU of the whole process while publishing, in the publish scenario only (receivers
	// down: nothing else runs).
	PublishCPUSeconds        float64 `json:"publishCpuSeconds,omitempty"`
	PublishCPUSecondsPer1000 float64 `json:"publishCpuSecondsPer1000Events,omitempty"`
	PublishCPUCores          float64 `json:"publishCpuCores,omitempty"`
	// PublishMaxLagMs: how late, at most, a request left behind its schedule (at a rate).
	PublishMaxLagMs float64 `json:"publishMaxLagMs,omitempty"`
	// End to end: first publish request sent → last delivery's first 200.
	Seconds          float64 `json:"seconds"`
	DeliveriesPerSec float64 `json:"deliveriesPerSec"`
	// LatencyMs: publish request sent → first 200 at the receiver, over every delivery.
	LatencyMs           Latency `json:"latencyMs"`
	Requests            int64   `json:"requests"`
	AttemptsPerDelivery float64 `json:"attemptsPerDelivery"`
	FailedOnPurpose     int64   `json:"failedOnPurpose"` // 500s the receivers gave (--fail-rate)
	Duplicates          int64   `json:"duplicates"`      // 200s beyond the first
	// CPU of the whole process (pipeline, receivers, publishers) over the measured phase.
	CPUSeconds        float64 `json:"cpuSeconds"`
	CPUSecondsPer1000 float64 `json:"cpuSecondsPer1000"`
	CPUCores          float64 `json:"cpuCores"` // CPU seconds ÷ wall seconds
	PeakRSSBytes      int64   `json:"peakRssBytes"`
	StoreBytes        int64   `json:"storeBytes"`
	// BookkeepingBytes is what the bench's own tracking arrays take (included in the RSS).
	BookkeepingBytes int64 `json:"bookkeepingBytes"`
	// Writer is what the embedded store's single writer did over the measured phase (the
	// publishing alone in the publish scenario); absent on PostgreSQL.
	Writer *WriterReport `json:"storeWriter,omitempty"`
	// Machine is the whole machine's CPU use over the same phase (Linux): every process, a
	// PostgreSQL server's included.
	Machine *MachineUse `json:"machineCpu,omitempty"`
	// InFlightBound is the share of the phase (looked at every 100 ms, Linux) in which a node
	// had --max-in-flight attempts in flight and more deliveries waiting while the machine's
	// CPU had room: the bound, not the CPU, held delivery back (receivers far away).
	InFlightBound float64 `json:"inFlightBound,omitempty"`
}

// MachineUse is the whole machine's CPU use over a measured phase, from /proc/stat.
type MachineUse struct {
	// CoresBusy is CPU time spent by every process and the kernel ÷ wall time: at the number
	// of CPUs, the machine had nothing left to give.
	CoresBusy float64 `json:"coresBusy"`
	// StealShare is the share of CPU time the hypervisor gave to other machines: work
	// measured while it is high was slowed by the host, not by hookrelay.
	StealShare float64 `json:"stealShare"`
}

// WriterReport is what the embedded store's single writer did over a measured phase.
type WriterReport struct {
	// Busy is the share of the phase's wall time the writer spent on writes: near 1, writes
	// queue for it and it bounds the pipeline.
	Busy float64 `json:"busy"`
	// CommitShare is the share of its busy time spent committing: writing the WAL and syncing
	// it to disk.
	CommitShare     float64 `json:"commitShare"`
	Commits         int64   `json:"commits"`
	WritesPerCommit float64 `json:"writesPerCommit"`
	// CommitsOver10ms counts the commits that took more than 10 ms: every write behind one
	// (a publish request, the engine's outcomes) waits as long.
	CommitsOver10ms int64 `json:"commitsOver10ms"`
	// SlowestCommitMs is the duration bucket of the slowest commit (nil without a commit).
	SlowestCommitMs *Bucket `json:"slowestCommitMs,omitempty"`
}

// Bucket is a range of a histogram: over Over and at most UpTo (no upper bound when UpTo is 0).
type Bucket struct {
	Over float64 `json:"over"`
	UpTo float64 `json:"upTo,omitempty"`
}

// BaselineReport holds the baseline's figures.
type BaselineReport struct {
	When              string  `json:"when"`
	Deliveries        int64   `json:"deliveries"`
	Requests          int64   `json:"requests"`
	Workers           int     `json:"workers"`
	Seconds           float64 `json:"seconds"`
	DeliveriesPerSec  float64 `json:"deliveriesPerSec"`
	CPUSecondsPer1000 float64 `json:"cpuSecondsPer1000"`
	CPUCores          float64 `json:"cpuCores"`
}

// BacklogReport holds the backlog scenario's figures.
type BacklogReport struct {
	NormalDeliveriesPerSec float64 `json:"normalDeliveriesPerSec"`
	// With receivers down: the deliveries pending once every event was accepted.
	Pending                int64   `json:"pending"`
	AccumulateSeconds      float64 `json:"accumulateSeconds"`
	AccumulateEventsPerSec float64 `json:"accumulateEventsPerSec"`
	PeakRSSWithBacklog     int64   `json:"peakRssWithBacklogBytes"`
	StoreBytesWithBacklog  int64   `json:"storeBytesWithBacklog"`
	// After receivers return: receivers back → the backlog's last first-200.
	DrainSeconds               float64 `json:"drainSeconds"`
	DrainDeliveriesPerSec      float64 `json:"drainDeliveriesPerSec"`      // backlog deliveries only
	DrainTotalDeliveriesPerSec float64 `json:"drainTotalDeliveriesPerSec"` // backlog and new
	DrainRatio                 float64 `json:"drainRatio"`                 // drain ÷ normal
	// Receivers back → 99% of the backlog delivered: the bulk of the drain without its tail.
	Drain99Seconds          float64 `json:"drain99Seconds"`
	Drain99DeliveriesPerSec float64 `json:"drain99DeliveriesPerSec"`
	NewEventsRate           float64 `json:"newEventsRate"`
	NewEvents               int     `json:"newEvents"`
	PeakRSSBytes            int64   `json:"peakRssBytes"` // at the end
}

// FairnessReport holds the fairness scenario's figures: the others' deliveries/s per run.
type FairnessReport struct {
	ControlDeliveriesPerSec float64 `json:"controlDeliveriesPerSec"`
	// ControlAfterDeliveriesPerSec is the control's run after the other two; the ratios are
	// of the mean of the two controls.
	ControlAfterDeliveriesPerSec float64     `json:"controlAfterDeliveriesPerSec"`
	LimitedDeliveriesPerSec      float64     `json:"limitedDeliveriesPerSec"`
	LimitedRatio                 float64     `json:"limitedRatio"`
	TimeoutDeliveriesPerSec      float64     `json:"timeoutDeliveriesPerSec"`
	TimeoutRatio                 float64     `json:"timeoutRatio"`
	LimitedWebhook               ExtraReport `json:"limitedWebhook"`
	TimeoutWebhook               ExtraReport `json:"timeoutWebhook"`
}

// ExtraReport is what the receivers saw of an extra (fairness) webhook.
type ExtraReport struct {
	Limit    int   `json:"maxThroughputPerMinute"`
	Events   int64 `json:"events"` // events sent to it
	Requests int64 `json:"requests"`
	OK       int64 `json:"ok"`
	TimedOut int64 `json:"timedOut"` // the sender gave up before the answer
}

// ScaleReport holds the scale scenario's figures.
type ScaleReport struct {
	SmallWebhooks         int     `json:"smallWebhooks"`
	SmallAccounts         int     `json:"smallAccounts"`
	SmallDeliveriesPerSec float64 `json:"smallDeliveriesPerSec"` // the small run before the large one
	// SmallAfterDeliveriesPerSec is the small layout's run after the large one.
	SmallAfterDeliveriesPerSec float64 `json:"smallAfterDeliveriesPerSec"`
	LargeWebhooks              int     `json:"largeWebhooks"`
	LargeAccounts              int     `json:"largeAccounts"`
	LargeDeliveriesPerSec      float64 `json:"largeDeliveriesPerSec"`
	Ratio                      float64 `json:"ratio"`       // large ÷ the mean of the two small runs
	CostPercent                float64 `json:"costPercent"` // (1 - ratio) × 100
}

// NodesReport holds the nodes scenario's figures.
type NodesReport struct {
	Nodes                    int     `json:"nodes"`
	OneDeliveriesPerSec      float64 `json:"oneDeliveriesPerSec"` // one node, before the nodes' run
	OneAfterDeliveriesPerSec float64 `json:"oneAfterDeliveriesPerSec"`
	OneMeanDeliveriesPerSec  float64 `json:"oneMeanDeliveriesPerSec"`
	NodesDeliveriesPerSec    float64 `json:"nodesDeliveriesPerSec"`
	Ratio                    float64 `json:"ratio"` // the nodes' ÷ the mean of the two one-node runs
}

// Target is one of the performance issue's targets and how this run stands against it.
type Target struct {
	Name  string  `json:"name"`
	Want  string  `json:"want"`
	Value float64 `json:"value"` // with rounds, their median
	Unit  string  `json:"unit"`
	Met   bool    `json:"met"`
	// With --rounds above 1: each round's value, and in how many of them the target was met.
	Rounds    []float64 `json:"rounds,omitempty"`
	MetRounds int       `json:"metRounds,omitempty"`
	// meets judges a value.
	meets func(float64) bool
}

// Checks says whether every delivery arrived once, signed and intact.
type Checks struct {
	OK bool `json:"ok"`
	// Over the pipeline runs: deliveries required, delivered, missing; 200s beyond the first:
	// all, and those no retry explains (a 200 to an attempt number that already had one).
	Deliveries            int64 `json:"deliveries"`
	Delivered             int64 `json:"delivered"`
	Missing               int64 `json:"missing"`
	Duplicates            int64 `json:"duplicates"`
	UnexplainedDuplicates int64 `json:"unexplainedDuplicates"`
	SignatureFailures     int64 `json:"signatureFailures"`
	// Problems: requests the receivers did not expect (unknown webhook, altered body, …).
	Problems int64 `json:"problems"`
	// The attempts the engines made, and those of them that got no response (a transport
	// error or a timeout): the receivers count only the requests that reached them.
	EngineAttempts           int64 `json:"engineAttempts"`
	EngineAttemptsNoResponse int64 `json:"engineAttemptsNoResponse"`
	// EngineDeferred counts deliveries the engines gave back to the store unattempted, to wait
	// for a throughput window or a slow webhook (a delivery may be deferred more than once).
	EngineDeferred int64    `json:"engineDeferred"`
	Errors         []string `json:"errors"`
}

// add adds o's counts and errors (each after prefix) to c's; c's OK is left as it is.
func (c *Checks) add(o Checks, prefix string) {
	c.Deliveries += o.Deliveries
	c.Delivered += o.Delivered
	c.Missing += o.Missing
	c.Duplicates += o.Duplicates
	c.UnexplainedDuplicates += o.UnexplainedDuplicates
	c.SignatureFailures += o.SignatureFailures
	c.Problems += o.Problems
	c.EngineAttempts += o.EngineAttempts
	c.EngineAttemptsNoResponse += o.EngineAttemptsNoResponse
	c.EngineDeferred += o.EngineDeferred
	for _, e := range o.Errors {
		c.Errors = append(c.Errors, prefix+e)
	}
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report for people.
func (r *Report) WriteTable(w io.Writer) {
	s := r.Settings
	fmt.Fprintf(w, "hookrelay bench — scenario %s\n", r.Scenario)
	offered := "as fast as possible"
	if s.Rate > 0 {
		offered = count(int64(s.Rate)) + " events/s offered"
	}
	store := "embedded store (SQLite)"
	if s.Store == "postgres" {
		store = fmt.Sprintf("PostgreSQL, %d node(s)", s.Nodes)
	}
	fmt.Fprintf(w, "settings: %s, fan-out %d, %s on %s, %s; %s, batch %d, %s;\n",
		plural(s.Events, "event"), s.Fanout, plural(s.Webhooks, "webhook"), plural(s.Accounts, "account"), plural(s.Receivers, "receiver"),
		plural(s.Publishers, "publisher"), s.Batch, offered)
	fmt.Fprintf(w, "          payload ~%d B, fail rate %g, receiver latency %gms; %s; retry %s; delivery timeout %s\n",
		s.Payload, s.FailRate, s.LatencyMs, store, strings.Join(s.RetrySchedule, ","), s.DeliveryTimeout)
	load := ""
	if r.Machine.LoadAvg != "" {
		load = ", load average " + r.Machine.LoadAvg + " at start"
	}
	fmt.Fprintf(w, "machine:  %d CPUs (GOMAXPROCS %d), %s/%s, %s, hookrelay %s%s\n\n", r.Machine.CPUs, r.Machine.GOMAXPROCS, r.Machine.OS, r.Machine.Arch, r.Machine.Go, r.Machine.Hookrelay, load)
	if len(r.Rounds) == 0 {
		r.writeRuns(w)
		r.writeTargets(w, "targets (this machine)")
	} else {
		for k, rr := range r.Rounds {
			load := ""
			if rr.Machine.LoadAvg != "" {
				load = " (load average " + rr.Machine.LoadAvg + " at its start)"
			}
			fmt.Fprintf(w, "── round %d of %d%s ──\n", k+1, len(r.Rounds), load)
			rr.writeRuns(w)
			rr.writeTargets(w, "this round's figures")
			fmt.Fprintln(w)
		}
		r.writeTargets(w, fmt.Sprintf("targets (this machine; each judged on the median of the %d rounds)", len(r.Rounds)))
	}
	r.writeChecks(w)
}

// writeRuns writes the runs' figures and the scenario's own.
func (r *Report) writeRuns(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, run := range r.Runs {
		nodes := ""
		if run.Nodes > 1 {
			nodes = ", " + plural(run.Nodes, "node")
		}
		fmt.Fprintf(tw, "run %s\t%s, %s, fan-out %d%s\n", run.Name, plural(run.Webhooks, "webhook"), plural(run.Accounts, "account"), run.Fanout, nodes)
		if run.Events > 0 {
			line := fmt.Sprintf("%s events in %s s\t%s events/s accepted", count(int64(run.Events)), secs(run.PublishSeconds), count(int64(run.PublishEventsPerSec)))
			if run.OfferedRate > 0 {
				line += fmt.Sprintf(" (offered %s/s, max lag %s ms)", count(int64(run.OfferedRate)), fixed(run.PublishMaxLagMs, 1))
			}
			fmt.Fprintf(tw, "  publish\t%s\n", line)
			fmt.Fprintf(tw, "  publish request\tp50 %s ms · p99 %s ms · max %s ms\n", fixed(run.PublishRequestMs.P50, 1), fixed(run.PublishRequestMs.P99, 1), fixed(run.PublishRequestMs.Max, 1))
			if run.PublishCPUSeconds > 0 {
				fmt.Fprintf(tw, "  CPU publishing\t%s s per 1,000 events\t%s s in all, %s cores busy on average\n", fixed(run.PublishCPUSecondsPer1000, 3), fixed(run.PublishCPUSeconds, 1), fixed(run.PublishCPUCores, 2))
			}
		}
		if run.Deliveries > 0 {
			fmt.Fprintf(tw, "  end to end\t%s deliveries in %s s\t%s deliveries/s\n", count(run.Deliveries), secs(run.Seconds), count(int64(run.DeliveriesPerSec)))
			fmt.Fprintf(tw, "  latency publish→receipt\tp50 %s ms · p95 %s ms · p99 %s ms · max %s ms\n",
				fixed(run.LatencyMs.P50, 1), fixed(run.LatencyMs.P95, 1), fixed(run.LatencyMs.P99, 1), fixed(run.LatencyMs.Max, 1))
			fmt.Fprintf(tw, "  attempts per delivery\t%s\t%s requests, %s answered 500 on purpose, %s duplicates\n",
				fixed(run.AttemptsPerDelivery, 3), count(run.Requests), count(run.FailedOnPurpose), count(run.Duplicates))
		}
		if run.CPUSeconds > 0 {
			fmt.Fprintf(tw, "  CPU\t%s s per 1,000 deliveries\t%s s in all, %s cores busy on average\n", fixed(run.CPUSecondsPer1000, 3), fixed(run.CPUSeconds, 1), fixed(run.CPUCores, 2))
		}
		if wr := run.Writer; wr != nil {
			fmt.Fprintf(tw, "  store writer\t%s%% busy\t%s writes per commit, %s%% of its time committing (WAL write and sync)\n",
				fixed(wr.Busy*100, 0), fixed(wr.WritesPerCommit, 1), fixed(wr.CommitShare*100, 0))
			if b := wr.SlowestCommitMs; b != nil {
				slowest := fmt.Sprintf("over %s ms", fixed(b.Over, 0))
				if b.UpTo > 0 {
					slowest = fmt.Sprintf("%s – %s ms", fixed(b.Over, 0), fixed(b.UpTo, 0))
				}
				fmt.Fprintf(tw, "  store commits\t%s over 10 ms\tthe slowest %s\n", count(wr.CommitsOver10ms), slowest)
			}
		}
		if mu := run.Machine; mu != nil {
			fmt.Fprintf(tw, "  machine CPU\t%s of %d cores busy\tevery process counted; %s%% of the time stolen by the hypervisor\n",
				fixed(mu.CoresBusy, 2), r.Machine.CPUs, fixed(mu.StealShare*100, 1))
		}
		if run.InFlightBound > 0 {
			fmt.Fprintf(tw, "  in-flight bound\t%s%% of the time\tattempts in flight at --max-in-flight, more deliveries waiting, the CPU not busy\n",
				fixed(run.InFlightBound*100, 0))
		}
		fmt.Fprintf(tw, "  peak RSS\t%s\t(bench bookkeeping %s of it)\n", mib(run.PeakRSSBytes), mib(run.BookkeepingBytes))
		fmt.Fprintf(tw, "  store on disk\t%s\n", mib(run.StoreBytes))
	}
	tw.Flush()
	if b := r.Backlog; b != nil {
		fmt.Fprintln(w, "\nbacklog")
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  normal rate\t%s deliveries/s\n", count(int64(b.NormalDeliveriesPerSec)))
		fmt.Fprintf(tw, "  pending with receivers down\t%s deliveries\taccumulated in %s s (%s events/s)\n", count(b.Pending), secs(b.AccumulateSeconds), count(int64(b.AccumulateEventsPerSec)))
		fmt.Fprintf(tw, "  with the backlog\tpeak RSS %s\tstore %s\n", mib(b.PeakRSSWithBacklog), mib(b.StoreBytesWithBacklog))
		fmt.Fprintf(tw, "  drain\t%s backlog deliveries/s\t%s s; %s deliveries/s with the %s new events (%s/s offered)\n",
			count(int64(b.DrainDeliveriesPerSec)), secs(b.DrainSeconds), count(int64(b.DrainTotalDeliveriesPerSec)), count(int64(b.NewEvents)), count(int64(b.NewEventsRate)))
		fmt.Fprintf(tw, "  99%% of the backlog\t%s deliveries/s\t%s s\n", count(int64(b.Drain99DeliveriesPerSec)), secs(b.Drain99Seconds))
		fmt.Fprintf(tw, "  drain ÷ normal\t%s\t(99%% of the backlog: %s)\n", fixed(b.DrainRatio, 2), fixed(b.Drain99DeliveriesPerSec/max(b.NormalDeliveriesPerSec, 1e-9), 2))
		tw.Flush()
	}
	if f := r.Fairness; f != nil {
		fmt.Fprintln(w, "\nfairness (the others' deliveries/s)")
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  control\t%s\tbefore the other two runs; %s after them\n", count(int64(f.ControlDeliveriesPerSec)),
			count(int64(f.ControlAfterDeliveriesPerSec)))
		fmt.Fprintf(tw, "  with a webhook limited to %d/min\t%s\t× %s of control; it got %s of its %s events\n", f.LimitedWebhook.Limit,
			count(int64(f.LimitedDeliveriesPerSec)), fixed(f.LimitedRatio, 2), count(f.LimitedWebhook.OK), count(f.LimitedWebhook.Events))
		fmt.Fprintf(tw, "  with a webhook that times out\t%s\t× %s of control; %s of its requests timed out\n",
			count(int64(f.TimeoutDeliveriesPerSec)), fixed(f.TimeoutRatio, 2), count(f.TimeoutWebhook.TimedOut))
		tw.Flush()
	}
	if sc := r.Scale; sc != nil {
		fmt.Fprintln(w, "\nscale")
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  %s, %s\t%s deliveries/s before, %s after\n", plural(sc.SmallWebhooks, "webhook"), plural(sc.SmallAccounts, "account"),
			count(int64(sc.SmallDeliveriesPerSec)), count(int64(sc.SmallAfterDeliveriesPerSec)))
		fmt.Fprintf(tw, "  %s, %s\t%s deliveries/s\n", plural(sc.LargeWebhooks, "webhook"), plural(sc.LargeAccounts, "account"), count(int64(sc.LargeDeliveriesPerSec)))
		fmt.Fprintf(tw, "  cost of the large layout\t%s %%\tagainst the mean of the small runs\n", fixed(sc.CostPercent, 1))
		tw.Flush()
	}
	if n := r.Nodes; n != nil {
		fmt.Fprintln(w, "\nnodes (PostgreSQL, the same database)")
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  one node\t%s deliveries/s\tbefore the nodes' run; %s after it; mean %s\n", count(int64(n.OneDeliveriesPerSec)),
			count(int64(n.OneAfterDeliveriesPerSec)), count(int64(n.OneMeanDeliveriesPerSec)))
		fmt.Fprintf(tw, "  %s\t%s deliveries/s\t× %s of one node\n", plural(n.Nodes, "node"), count(int64(n.NodesDeliveriesPerSec)), fixed(n.Ratio, 2))
		tw.Flush()
	}
	if b := r.Baseline; b != nil {
		fmt.Fprintf(w, "\nbaseline (same bodies, secrets and receivers; %d goroutines; no store, no queue)\n", b.Workers)
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, b := range []*BaselineReport{r.BaselineBefore, b} {
			if b == nil {
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s deliveries in %s s\t%s deliveries/s\n", b.When, count(b.Deliveries), secs(b.Seconds), count(int64(b.DeliveriesPerSec)))
			fmt.Fprintf(tw, "  \t%s s CPU per 1,000 deliveries\t%s cores busy on average\n", fixed(b.CPUSecondsPer1000, 3), fixed(b.CPUCores, 2))
		}
		if r.RatioToBaseline > 0 {
			fmt.Fprintf(tw, "  pipeline ÷ baseline\t%s\n", fixed(r.RatioToBaseline, 2))
		}
		tw.Flush()
	}
}

// writeTargets writes the targets under title: with rounds, each round's figure too.
func (r *Report) writeTargets(w io.Writer, title string) {
	if len(r.Targets) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s\n", title)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, t := range r.Targets {
		verdict := "not met"
		if t.Met {
			verdict = "met"
		}
		rounds := ""
		if len(t.Rounds) > 0 {
			vs := make([]string, len(t.Rounds))
			for i, v := range t.Rounds {
				vs[i] = number(v)
			}
			rounds = fmt.Sprintf("\tmet in %d of %d rounds: %s", t.MetRounds, len(t.Rounds), strings.Join(vs, " · "))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s %s\t%s%s\n", t.Name, t.Want, number(t.Value), t.Unit, verdict, rounds)
	}
	tw.Flush()
}

// writeChecks writes the checks, the notes and the error.
func (r *Report) writeChecks(w io.Writer) {
	c := r.Checks
	fmt.Fprintln(w)
	if c.OK {
		dup := "no duplicates"
		if c.Duplicates > 0 {
			dup = count(c.Duplicates) + " duplicates, each a retry of an attempt the sender gave up on (timeout)"
		}
		fmt.Fprintf(w, "checks: passed — %s deliveries, each arrived once with its signature verified and its body intact; %s\n",
			count(c.Delivered), dup)
		fmt.Fprintf(w, "engine:  %s attempts made, %s of them without a response (the receivers count only the requests that reach them); %s deferrals to a later time (a slow webhook's or a shut window's)\n",
			count(c.EngineAttempts), count(c.EngineAttemptsNoResponse), count(c.EngineDeferred))
	} else {
		fmt.Fprintf(w, "checks: FAILED — %s missing, %s unexplained duplicates, %s signature failures, %s unexpected requests\n",
			count(c.Missing), count(c.UnexplainedDuplicates), count(c.SignatureFailures), count(c.Problems))
		for _, e := range c.Errors {
			fmt.Fprintf(w, "  - %s\n", e)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "error: %s\n", r.Error)
	}
}

// plural is "1 webhook", "2 webhooks".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return count(int64(n)) + " " + noun + "s"
}

// count formats n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fixed(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

func secs(v float64) string { return fixed(v, 2) }

// number formats a target's value: thousands separators for large ones, decimals for small.
func number(v float64) string {
	if math.Abs(v) >= 100 {
		return count(int64(math.Round(v)))
	}
	return fixed(v, 2)
}

func mib(b int64) string {
	return fixed(float64(b)/(1<<20), 1) + " MiB"
}

func durations(d []time.Duration) []string {
	out := make([]string, len(d))
	for i, x := range d {
		out[i] = x.String()
	}
	return out
}
