package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/internal/config"
	"github.com/hookrelay/hookrelay/internal/server"
)

// clearEnv keeps HOOKRELAY_* variables of the environment the tests run in out of them.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, s := range config.Settings {
		t.Setenv(s.Env, "")
	}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "HOOKRELAY_") {
			t.Setenv(name, "")
		}
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestVersion(t *testing.T) {
	clearEnv(t)
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "hookrelay ") || strings.TrimSpace(out) == "hookrelay" {
		t.Errorf("version = %d %q", code, out)
	}
}

func TestHelp(t *testing.T) {
	clearEnv(t)
	code, out, _ := runCLI(t, "help")
	if code != 0 {
		t.Fatalf("help exit code %d", code)
	}
	// Every setting the contract names, and every one the program has.
	want := []string{"HOOKRELAY_ADDR", "HOOKRELAY_DATA_DIR", "HOOKRELAY_DATABASE_URL", "HOOKRELAY_ADMIN_KEY",
		"HOOKRELAY_RETRY_SCHEDULE", "HOOKRELAY_DELIVERY_TIMEOUT", "HOOKRELAY_ALLOW_PRIVATE_DESTINATIONS",
		"HOOKRELAY_SMTP_URL", "HOOKRELAY_ALERT_FROM", "HOOKRELAY_ALERT_INTERVAL"}
	for _, s := range config.Settings {
		want = append(want, s.Env, "--"+s.Flag)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("help does not mention %s", w)
		}
	}
	for _, cmd := range []string{"serve", "migrate", "account create", "version", "help"} {
		if !strings.Contains(out, cmd) {
			t.Errorf("help does not mention the %q command", cmd)
		}
	}
	// No command: usage on stderr, non-zero exit.
	code, _, errOut := runCLI(t)
	if code == 0 || !strings.Contains(errOut, "Usage") {
		t.Errorf("no command = %d %q", code, errOut)
	}
}

func TestAccountCreate(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "account", "create", "--email", "e@x.test", "--name", "N", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("account create = %d, stderr %s", code, errOut)
	}
	// Exactly one JSON object on stdout.
	dec := json.NewDecoder(strings.NewReader(out))
	var got map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout is not JSON: %v: %q", err, out)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Errorf("stdout has more than one JSON value: %q", out)
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"apiKey", "email", "id", "name"}) {
		t.Errorf("keys = %v", keys)
	}
	key, _ := got["apiKey"].(string)
	if got["id"] != float64(1) || got["email"] != "e@x.test" || got["name"] != "N" || !strings.HasPrefix(key, "hr_") {
		t.Errorf("account = %v", got)
	}

	// The same email again: refused.
	code, _, errOut = runCLI(t, "account", "create", "--email", "e@x.test", "--data-dir", dir)
	if code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("duplicate = %d %q", code, errOut)
	}
	// Settings come from the environment too.
	t.Setenv("HOOKRELAY_DATA_DIR", dir)
	code, out, errOut = runCLI(t, "account", "create", "--email", "second@x.test")
	if code != 0 || !strings.Contains(out, `"id":2`) {
		t.Errorf("account create from HOOKRELAY_DATA_DIR = %d %q %q", code, out, errOut)
	}

	// A server on that data dir takes the key.
	cfg := config.Default()
	cfg.Addr, cfg.DataDir, cfg.AdminKey = "127.0.0.1:0", dir, "hra_cli_test_admin_key_0123"
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	req, _ := http.NewRequest("GET", "http://"+srv.Addr()+"/v3/webhooks", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("key made by the CLI: %d", resp.StatusCode)
	}
}

func TestAccountCreateErrors(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no email", []string{"account", "create", "--name", "N", "--data-dir", dir}, "--email"},
		{"invalid email", []string{"account", "create", "--email", "nope", "--data-dir", dir}, "email"},
		{"placeholder email", []string{"account", "create", "--email", "[email\u00a0protected]", "--data-dir", dir}, "email"},
		{"no subcommand", []string{"account"}, "account create"},
		{"unknown subcommand", []string{"account", "delete"}, "account create"},
		{"stray argument", []string{"account", "create", "--email", "a@x.test", "--data-dir", dir, "extra"}, "extra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("= %d, stdout %q, stderr %q; want 1 and a message naming %s", code, out, errOut, tc.want)
			}
		})
	}
	// None of them created an account.
	code, out, errOut := runCLI(t, "account", "create", "--email", "first@x.test", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, `"id":1,`) {
		t.Errorf("first account after failed commands = %d %q %q", code, out, errOut)
	}
}

func TestInvalidSettings(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"retry schedule flag", []string{"serve", "--retry-schedule", "nonsense"}, nil, "--retry-schedule"},
		{"retry schedule env", []string{"serve"}, map[string]string{"HOOKRELAY_RETRY_SCHEDULE": "nonsense"}, "HOOKRELAY_RETRY_SCHEDULE"},
		{"delivery timeout", []string{"serve", "--delivery-timeout", "soon"}, nil, "--delivery-timeout"},
		{"addr", []string{"serve", "--addr", "nowhere"}, nil, "--addr"},
		{"database url", []string{"migrate", "--database-url", "mysql://x"}, nil, "--database-url"},
		{"short admin key", []string{"serve", "--admin-key", "short"}, nil, "--admin-key"},
		{"unknown flag", []string{"serve", "--no-such-flag"}, nil, "no-such-flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, errOut := runCLI(t, tc.args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("= %d, stderr %q; want failure naming %s", code, errOut, tc.want)
			}
		})
	}
	// The flag wins over the environment.
	t.Setenv("HOOKRELAY_RETRY_SCHEDULE", "nonsense")
	code, out, errOut := runCLI(t, "migrate", "--retry-schedule", "1s", "--data-dir", t.TempDir())
	if code != 0 {
		t.Errorf("flag over env: %d %q %q", code, out, errOut)
	}
}

func TestUnknownCommand(t *testing.T) {
	clearEnv(t)
	code, out, errOut := runCLI(t, "frobnicate")
	if code != 1 || !strings.Contains(errOut, "frobnicate") || !strings.Contains(errOut, "help") || out != "" {
		t.Errorf("unknown command = %d %q %q", code, out, errOut)
	}
}

func TestMigrate(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	for range 2 { // twice: the second finds nothing to do
		code, out, errOut := runCLI(t, "migrate", "--data-dir", dir)
		if code != 0 || !strings.Contains(out, "migrations applied") {
			t.Fatalf("migrate = %d %q %q", code, out, errOut)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) == 0 {
		t.Errorf("migrate created nothing in %s", dir)
	}
}
