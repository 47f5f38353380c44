// Package config holds hookrelay's settings. Every setting is a command-line flag and a
// HOOKRELAY_* environment variable; the flag wins, then the variable, then the default.
// Values are checked when loaded, and an error names the setting and says what is allowed.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Config is the whole of hookrelay's settings.
type Config struct {
	Addr                     string
	DataDir                  string
	DatabaseURL              string
	DBMaxConns               int
	AdminKey                 string
	RetrySchedule            []time.Duration
	DeliveryTimeout          time.Duration
	MaxInFlight              int
	MaxInFlightPerWebhook    int
	AllowPrivateDestinations bool
	SMTPURL                  string
	AlertFrom                string
	AlertInterval            time.Duration
	DisableAfter             time.Duration
	Retention                time.Duration
	LogLevel                 slog.Level
	LogFormat                string
}

// Setting describes one setting, for flags, environment and help.
type Setting struct {
	Flag    string
	Env     string
	Default string
	Usage   string
	bool    bool
	apply   func(c *Config, v string) error
}

// Settings lists every setting in the order help shows them.
var Settings = []Setting{
	{Flag: "addr", Env: "HOOKRELAY_ADDR", Default: "127.0.0.1:8080", Usage: "HTTP listen address (host:port)",
		apply: func(c *Config, v string) error {
			if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
				return errors.New("must be host:port, for example 127.0.0.1:8080 or :8080")
			}
			c.Addr = v
			return nil
		}},
	{Flag: "data-dir", Env: "HOOKRELAY_DATA_DIR", Default: "./hookrelay-data", Usage: "directory of the embedded store (SQLite, WAL) and the generated admin key",
		apply: func(c *Config, v string) error {
			if v == "" {
				return errors.New("must not be empty")
			}
			c.DataDir = v
			return nil
		}},
	{Flag: "database-url", Env: "HOOKRELAY_DATABASE_URL", Default: "", Usage: "postgres://… switches to PostgreSQL; empty = the embedded store",
		apply: func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
				return errors.New("must be empty or a postgres:// (or postgresql://) URL")
			}
			c.DatabaseURL = v
			return nil
		}},
	{Flag: "db-max-conns", Env: "HOOKRELAY_DB_MAX_CONNS", Default: "16", Usage: "PostgreSQL connections per node at most (the URL's pool_max_conns is overridden by this)",
		apply: func(c *Config, v string) error {
			n, err := intIn(v, 1, 1000)
			c.DBMaxConns = n
			return err
		}},
	{Flag: "admin-key", Env: "HOOKRELAY_ADMIN_KEY", Default: "", Usage: "platform key; if unset, one is generated on first start and written to <data-dir>/admin.key",
		apply: func(c *Config, v string) error {
			if v != "" && len(v) < 16 {
				return errors.New("must be at least 16 characters")
			}
			c.AdminKey = v
			return nil
		}},
	{Flag: "retry-schedule", Env: "HOOKRELAY_RETRY_SCHEDULE", Default: "30s,5m", Usage: "delays before retry 1, 2, … (Go durations, comma-separated); its length is the retry count",
		apply: func(c *Config, v string) error {
			c.RetrySchedule = nil
			if strings.TrimSpace(v) == "" {
				return nil
			}
			for _, part := range strings.Split(v, ",") {
				d, err := time.ParseDuration(strings.TrimSpace(part))
				if err != nil || d <= 0 || d > 7*24*time.Hour {
					return fmt.Errorf("%q is not a duration from 1ns to 168h (write durations like 30s, 5m, 1h)", strings.TrimSpace(part))
				}
				c.RetrySchedule = append(c.RetrySchedule, d)
			}
			if len(c.RetrySchedule) > 50 {
				return errors.New("must have at most 50 retries")
			}
			return nil
		}},
	{Flag: "delivery-timeout", Env: "HOOKRELAY_DELIVERY_TIMEOUT", Default: "15s", Usage: "one attempt's whole time budget",
		apply: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d > 5*time.Minute {
				return errors.New("must be a duration from 1ms to 5m, for example 15s")
			}
			c.DeliveryTimeout = d
			return nil
		}},
	{Flag: "max-in-flight", Env: "HOOKRELAY_MAX_IN_FLIGHT", Default: "512", Usage: "delivery attempts in flight at once on this node, across all webhooks, at most",
		apply: func(c *Config, v string) error {
			n, err := intIn(v, 1, maxInFlight)
			c.MaxInFlight = n
			return err
		}},
	{Flag: "max-in-flight-per-webhook", Env: "HOOKRELAY_MAX_IN_FLIGHT_PER_WEBHOOK", Default: "64", Usage: "delivery attempts in flight at once to one webhook on this node, at most (and never more than --max-in-flight)",
		apply: func(c *Config, v string) error {
			n, err := intIn(v, 1, maxInFlight)
			c.MaxInFlightPerWebhook = n
			return err
		}},
	{Flag: "allow-private-destinations", Env: "HOOKRELAY_ALLOW_PRIVATE_DESTINATIONS", Default: "false", bool: true,
		Usage: "allow webhook URLs that resolve to loopback/private/link-local addresses (development and tests)",
		apply: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false")
			}
			c.AllowPrivateDestinations = b
			return nil
		}},
	{Flag: "smtp-url", Env: "HOOKRELAY_SMTP_URL", Default: "", Usage: "smtp://user:pass@host:port (or smtps://) for alert emails; empty = alerts are logged and kept, not mailed",
		apply: func(c *Config, v string) error {
			if v != "" {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
					return errors.New("must be empty or smtp://[user:pass@]host[:port] or smtps://…")
				}
				if p := u.Port(); p != "" {
					if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
						return errors.New("port must be 1–65535")
					}
				}
			}
			c.SMTPURL = v
			return nil
		}},
	{Flag: "alert-from", Env: "HOOKRELAY_ALERT_FROM", Default: "hookrelay@localhost", Usage: "From: address of alert emails",
		apply: func(c *Config, v string) error {
			if _, err := mail.ParseAddress(v); err != nil {
				return errors.New("must be an email address, for example hookrelay@example.com")
			}
			c.AlertFrom = v
			return nil
		}},
	{Flag: "alert-interval", Env: "HOOKRELAY_ALERT_INTERVAL", Default: "1h", Usage: "at most one alert email per webhook per interval",
		apply: func(c *Config, v string) error {
			d, err := ParseDuration(v)
			if err != nil || d <= 0 {
				return errors.New("must be a positive duration, for example 1h or 15m")
			}
			c.AlertInterval = d
			return nil
		}},
	{Flag: "disable-after", Env: "HOOKRELAY_DISABLE_AFTER", Default: "5d", Usage: "a webhook failing without a success this long, across at least 10 deliveries, is disabled; 0 = never",
		apply: func(c *Config, v string) error {
			d, err := ParseDuration(v)
			if err != nil || d < 0 {
				return errors.New("must be 0 (never) or a positive duration, for example 5d or 72h")
			}
			c.DisableAfter = d
			return nil
		}},
	{Flag: "retention", Env: "HOOKRELAY_RETENTION", Default: "30d", Usage: "finished deliveries and their events are deleted after this long",
		apply: func(c *Config, v string) error {
			d, err := ParseDuration(v)
			if err != nil || d < time.Hour {
				return errors.New("must be a duration of at least 1h, for example 30d or 720h")
			}
			c.Retention = d
			return nil
		}},
	{Flag: "log-level", Env: "HOOKRELAY_LOG_LEVEL", Default: "info", Usage: "debug, info, warn or error",
		apply: func(c *Config, v string) error {
			if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
				return errors.New("must be debug, info, warn or error")
			}
			return nil
		}},
	{Flag: "log-format", Env: "HOOKRELAY_LOG_FORMAT", Default: "text", Usage: "text or json",
		apply: func(c *Config, v string) error {
			if v != "text" && v != "json" {
				return errors.New("must be text or json")
			}
			c.LogFormat = v
			return nil
		}},
}

// maxInFlight bounds the in-flight settings: each attempt holds a connection, so beyond this
// a node runs out of file descriptors or ports before it gains anything.
const maxInFlight = 65536

// intIn parses v as an integer from lo to hi.
func intIn(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("must be an integer from %d to %d", lo, hi)
	}
	return n, nil
}

// ParseDuration is time.ParseDuration that also takes whole days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Default returns the configuration with every setting at its default.
func Default() Config {
	var c Config
	for _, s := range Settings {
		if err := s.apply(&c, s.Default); err != nil {
			panic(fmt.Sprintf("default of --%s: %v", s.Flag, err))
		}
	}
	return c
}

// value is a flag.Value that only remembers the text it was given.
type value struct {
	text   string
	isBool bool
}

func (v *value) String() string     { return v.text }
func (v *value) Set(s string) error { v.text = s; return nil }
func (v *value) IsBoolFlag() bool   { return v.isBool }

// Flags registers every setting on fs and returns a function that, after fs.Parse, builds
// the Config from the flags given, then the environment (read through getenv), then the defaults.
func Flags(fs *flag.FlagSet, getenv func(string) string) func() (Config, error) {
	values := make([]*value, len(Settings))
	for i, s := range Settings {
		values[i] = &value{text: s.Default, isBool: s.bool}
		fs.Var(values[i], s.Flag, s.Usage+" ($"+s.Env+")")
	}
	return func() (Config, error) {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		var c Config
		var errs []error
		for i, s := range Settings {
			v, from := values[i].text, "--"+s.Flag
			if !given[s.Flag] {
				if env := getenv(s.Env); env != "" {
					v, from = env, s.Env
				} else {
					from = "default of --" + s.Flag
				}
			}
			if err := s.apply(&c, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid %s %q: %w", from, v, err))
			}
		}
		return c, errors.Join(errs...)
	}
}

// WriteHelp writes the settings as a table: flag, environment variable, default, meaning.
func WriteHelp(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FLAG\tENVIRONMENT\tDEFAULT\tMEANING")
	for _, s := range Settings {
		def := s.Default
		if def == "" {
			def = "(empty)"
		}
		if s.Flag == "admin-key" {
			def = "(generated)"
		}
		fmt.Fprintf(tw, "  --%s\t%s\t%s\t%s\n", s.Flag, s.Env, def, s.Usage)
	}
	tw.Flush()
}
