package config

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	build := Flags(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return build()
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DataDir != "./hookrelay-data" || c.DatabaseURL != "" || c.AdminKey != "" ||
		len(c.RetrySchedule) != 2 || c.RetrySchedule[0] != 30*time.Second || c.RetrySchedule[1] != 5*time.Minute ||
		c.DeliveryTimeout != 15*time.Second || c.AllowPrivateDestinations || c.SMTPURL != "" ||
		c.AlertFrom != "hookrelay@localhost" || c.AlertInterval != time.Hour || c.Retention != 30*24*time.Hour ||
		c.DisableAfter != 5*24*time.Hour || c.DBMaxConns != 16 || c.MaxInFlight != 512 || c.MaxInFlightPerWebhook != 64 {
		t.Fatalf("defaults = %+v", c)
	}
	if d := Default(); d.Addr != c.Addr || d.Retention != c.Retention {
		t.Fatalf("Default() = %+v differs from loading nothing", d)
	}
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	env := map[string]string{"HOOKRELAY_ADDR": "0.0.0.0:9000", "HOOKRELAY_DELIVERY_TIMEOUT": "3s", "HOOKRELAY_ALLOW_PRIVATE_DESTINATIONS": "true"}
	c, err := load(t, []string{"--addr", "127.0.0.1:7000"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:7000" || c.DeliveryTimeout != 3*time.Second || !c.AllowPrivateDestinations {
		t.Fatalf("got %+v", c)
	}
	c, err = load(t, []string{"--allow-private-destinations", "--retry-schedule", "1s, 2s,3s", "--retention", "2d"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.AllowPrivateDestinations || len(c.RetrySchedule) != 3 || c.RetrySchedule[2] != 3*time.Second || c.Retention != 48*time.Hour {
		t.Fatalf("got %+v", c)
	}
	c, err = load(t, []string{"--max-in-flight", "4096"}, map[string]string{"HOOKRELAY_MAX_IN_FLIGHT": "8", "HOOKRELAY_MAX_IN_FLIGHT_PER_WEBHOOK": "256"})
	if err != nil || c.MaxInFlight != 4096 || c.MaxInFlightPerWebhook != 256 {
		t.Fatalf("in-flight settings: %d, %d, %v", c.MaxInFlight, c.MaxInFlightPerWebhook, err)
	}
	c, err = load(t, []string{"--retry-schedule="}, nil)
	if err != nil || len(c.RetrySchedule) != 0 {
		t.Fatalf("empty retry schedule: %+v, %v", c.RetrySchedule, err)
	}
}

func TestInvalidValuesNameTheSetting(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--addr", "nonsense"}, nil, `invalid --addr "nonsense": must be host:port`},
		{nil, map[string]string{"HOOKRELAY_ADDR": "x"}, `invalid HOOKRELAY_ADDR "x"`},
		{[]string{"--database-url", "mysql://x"}, nil, "invalid --database-url"},
		{[]string{"--admin-key", "short"}, nil, "invalid --admin-key"},
		{[]string{"--retry-schedule", "30s,soon"}, nil, `invalid --retry-schedule "30s,soon": "soon" is not a duration`},
		{[]string{"--retry-schedule", "-1s"}, nil, "invalid --retry-schedule"},
		{[]string{"--delivery-timeout", "0s"}, nil, "invalid --delivery-timeout"},
		{nil, map[string]string{"HOOKRELAY_ALLOW_PRIVATE_DESTINATIONS": "yes please"}, "invalid HOOKRELAY_ALLOW_PRIVATE_DESTINATIONS"},
		{[]string{"--smtp-url", "http://mail"}, nil, "invalid --smtp-url"},
		{[]string{"--smtp-url", "smtp://mail:99999"}, nil, "port must be 1–65535"},
		{[]string{"--alert-from", "not an address"}, nil, "invalid --alert-from"},
		{[]string{"--alert-interval", "-5m"}, nil, "invalid --alert-interval"},
		{[]string{"--retention", "10m"}, nil, "invalid --retention"},
		{[]string{"--disable-after", "-1h"}, nil, "invalid --disable-after"},
		{[]string{"--db-max-conns", "0"}, nil, `invalid --db-max-conns "0": must be an integer from 1 to 1000`},
		{[]string{"--max-in-flight", "0"}, nil, `invalid --max-in-flight "0": must be an integer from 1 to 65536`},
		{[]string{"--max-in-flight", "lots"}, nil, `invalid --max-in-flight "lots"`},
		{nil, map[string]string{"HOOKRELAY_MAX_IN_FLIGHT_PER_WEBHOOK": "100000"}, `invalid HOOKRELAY_MAX_IN_FLIGHT_PER_WEBHOOK "100000": must be an integer from 1 to 65536`},
		{[]string{"--log-level", "loud"}, nil, "invalid --log-level"},
		{[]string{"--log-format", "xml"}, nil, "invalid --log-format"},
	}
	for _, tt := range tests {
		_, err := load(t, tt.args, tt.env)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("args %v env %v: err = %v, want it to contain %q", tt.args, tt.env, err, tt.want)
		}
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var b strings.Builder
	WriteHelp(&b)
	for _, s := range Settings {
		if !strings.Contains(b.String(), "--"+s.Flag) || !strings.Contains(b.String(), s.Env) {
			t.Errorf("help lacks --%s / %s", s.Flag, s.Env)
		}
	}
}
