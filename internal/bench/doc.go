// Package bench is hookrelay's end-to-end measuring instrument, the logic of `hookrelay bench`.
//
// It runs the real pipeline in this process — servers made by server.New and Run on the
// embedded store in a temporary directory (or on --database-url, one server per --nodes) —
// and drives it only through the public HTTP API: POST /v3/accounts, POST /v3/webhooks and
// POST /v3/events/batch. Deliveries go to receivers it starts itself: net/http servers on
// 127.0.0.1 that verify every X-Signature with webhook.Verify against the secret of the webhook
// named by X-Webhook-Id (each webhook has its own secret), check that the body is byte for byte
// the one published, and record for every (event, webhook) pair the number of requests, the
// number of 200 answers and the time of the first 200.
//
// In the same invocation, after the pipeline has been stopped, it runs the baseline: the same
// signed POSTs (same bodies, secrets, headers and receivers) sent straight from memory by a
// fixed pool of goroutines over a tuned http.Transport, with no store and no queue. The
// pipeline's deliveries/s is reported as a ratio of the baseline's, a figure that holds on a
// noisy machine. The throughput scenario also runs the baseline before the pipeline (with ids
// of its own, nothing being published yet) and takes the ratio of the two baselines' mean, so
// that the machine's drift during the run is bracketed.
//
// # What is measured
//
//   - publish rate: events accepted by POST /v3/events/batch per second, from the first publish
//     request sent to the last answer received;
//   - end to end: required deliveries per second, from the first publish request sent to the
//     last first-200 at a receiver;
//   - latency publish→receipt: for every delivery, from the moment the publish request that
//     carried its event was sent to its first 200 at a receiver (p50, p95, p99, max);
//   - attempts per delivery: requests the receivers got ÷ deliveries;
//   - CPU seconds per 1,000 deliveries: getrusage(RUSAGE_SELF) user+sys over the measured
//     phase. Receivers and publishers run in the same process and are included;
//   - peak RSS: the run's own on Linux (the kernel's high-water mark, reset at the run's start
//     once the Go heap's free memory is given back), else ru_maxrss, the process's so far; it
//     includes receivers and publishers (the report gives the size of the bench's own
//     bookkeeping arrays);
//   - store size: the files in the data directory, or pg_database_size on PostgreSQL.
//
// # Checks
//
// Every (event, webhook) pair must arrive (missing → failure). A pair may be answered 200 more
// than once only by different attempts (X-Delivery-Attempt): a retry means the sender counted
// the earlier attempt as failed — it timed out, or the connection broke — which at-least-once
// allows; two 200s to the same attempt number are duplicates no retry explains (failure).
// Every signature must verify; every body must be the bytes published; every X-Event-Id must be
// the id the publish answer gave. Any failed check makes Run return an error and the command
// exit non-zero. Receivers answering 500 at --fail-rate never fail the last attempt the retry
// schedule allows, so every delivery still arrives and retries are exercised.
//
// # Scenarios
//
//   - throughput (default): publish --events as fast as possible with --publishers concurrent
//     publishers in batches of --batch, every event to --fanout webhooks; report every figure,
//     the baseline and the ratio. Judged by: ≥ 10,000 deliveries/s end to end, ≥ 0.5 ×
//     baseline. The publish rate is reported but not judged here: publishing shares the cores
//     with delivering.
//   - latency: the same with an open-loop offered load (--rate, default 2,000 events/s, in
//     batches of 20): publish requests are sent on a fixed schedule whatever the answers.
//     Judged by: p99 publish→receipt ≤ 50 ms.
//   - publish: receivers go down (as in backlog) before --events (default 200,000) events are
//     published as fast as possible, so publishing has the cores to itself while every event
//     and delivery is stored; then receivers come back and every delivery is checked. The CPU
//     profile (--cpuprofile) covers the publishing only. Judged by: ≥ 50,000 events/s accepted.
//   - backlog: a normal phase (--events/10 events, receivers up) gives the normal rate; then
//     receivers go down (they accept requests and hold them unanswered; the delivery timeout
//     defaults to 5m so held attempts do not fail) while --events events are published, so
//     --events × --fanout deliveries accumulate (1,000,000 by default); peak RSS and store
//     size are taken; then receivers come back while new events keep flowing at --rate
//     (default 1,000 events/s) until the backlog is delivered. Judged by: RSS < 300 MB with
//     the backlog, and backlog deliveries/s during the drain ≥ 0.8 × the normal rate.
//   - fairness: four runs on fresh pipelines — control (--webhooks normal webhooks), limited
//     (plus one webhook limited to 60/min that gets every event of the first account and event
//     type), timeout (plus one such webhook whose receiver never answers within the delivery
//     timeout, 500ms by default: short enough that its requests time out within runs of about
//     two seconds) and control again, so that the machine's drift does not count. The
//     others' deliveries/s in each run is compared with the mean of the two controls. Judged by:
//     each ≥ 0.9 × that mean. The limited webhook's receiver also checks that no 60-second
//     window saw more than 60 of its requests.
//   - scale: three runs with the same events and fan-out: small (10 webhooks), large
//     (--webhooks, default 10,000, across --accounts, default 1,000; fan-out 5), and small
//     again, so that the machine's drift does not count. Judged by: the large run's
//     deliveries/s ≥ 0.8 × the mean of the small runs'.
//   - nodes (PostgreSQL only): three throughput runs on the same database — one node, --nodes
//     nodes (default 3), one node again — so that the machine's drift does not count. Judged
//     by: one node's deliveries/s (the mean of its two runs) ≥ 5,000, and the nodes'
//     deliveries/s more than that mean.
//
// # Rounds
//
// --rounds N runs the whole scenario N times in one invocation, each round with fresh
// pipelines (and a data directory round-1, round-2, … under --data-dir), and judges each target
// on the median of the rounds' figures; the report keeps every round's report and says in how
// many rounds each target was met. On the project's machines the same run varies by up to a
// factor of two from one minute to the next, so a single round judges a target near its bound
// only roughly. On PostgreSQL the rounds share the database.
//
// # Layout
//
// Webhooks are grouped: each group is one (account, event type) and holds --fanout webhooks,
// so every event — sent to one group, round robin — is delivered to exactly --fanout webhooks.
// There are --webhooks/--fanout groups; an account has at most one group per event type (four),
// so --accounts must lie between groups/4 and groups (default: the fewest that fit). Webhooks
// are spread over --receivers receiver servers (default: one per webhook, at most 16).
//
// # Several nodes
//
// With --database-url, --nodes servers are started on the same database and publish requests
// go to them in turn; use an empty database. If server.New fails (an unreachable database, or
// a server without PostgreSQL support), its error is reported as is. CPU and RSS figures are
// the bench process's: the PostgreSQL server's own are not included.
package bench
