// Command hookrelay is a self-hosted webhook delivery service. See "hookrelay help".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hookrelay/hookrelay/internal/api"
	"github.com/hookrelay/hookrelay/internal/bench"
	"github.com/hookrelay/hookrelay/internal/config"
	"github.com/hookrelay/hookrelay/internal/server"
	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/version"
)

const usage = `hookrelay delivers your platform's events to your customers' webhooks.

Usage:
  hookrelay serve [settings]                      run the service
  hookrelay migrate [settings]                    apply schema migrations and exit
  hookrelay account create --email E [--name N] [settings]
                                                  create an account, print it with its API key (JSON)
  hookrelay bench [flags]                         measure the pipeline end to end (hookrelay bench --help)
  hookrelay version                               print the version
  hookrelay help                                  print this help

Settings (flag, environment variable; the flag wins):
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		config.WriteHelp(stderr)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serve(rest, stderr)
	case "migrate":
		err = migrate(rest, stdout, stderr)
	case "account":
		if len(rest) == 0 || rest[0] != "create" {
			err = errors.New(`usage: hookrelay account create --email E [--name N]`)
			break
		}
		err = createAccount(rest[1:], stdout, stderr)
	case "bench":
		err = runBench(rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "hookrelay", version.String())
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		config.WriteHelp(stdout)
	default:
		err = fmt.Errorf("unknown command %q; run \"hookrelay help\"", cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "hookrelay:", err)
		return 1
	}
	return 0
}

// settings parses the flags of a subcommand (with extra flags added by more) and the environment.
func settings(name string, args []string, stderr io.Writer, more func(fs *flag.FlagSet)) (config.Config, error) {
	fs := flag.NewFlagSet("hookrelay "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	build := config.Flags(fs, os.Getenv)
	if more != nil {
		more(fs)
	}
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	if fs.NArg() > 0 {
		return config.Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return build()
}

func logger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(args []string, stderr io.Writer) error {
	cfg, err := settings("serve", args, stderr, nil)
	if err != nil {
		return err
	}
	log := logger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

func runBench(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return bench.Command(ctx, args, stdout, stderr)
}

func migrate(args []string, stdout, stderr io.Writer) error {
	cfg, err := settings("migrate", args, stderr, nil)
	if err != nil {
		return err
	}
	st, err := server.OpenStore(context.Background(), cfg, logger(cfg, stderr))
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

func createAccount(args []string, stdout, stderr io.Writer) error {
	var email, name string
	cfg, err := settings("account create", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the account's email address (required)")
		fs.StringVar(&name, "name", "", "the account's name")
	})
	if err != nil {
		return err
	}
	if email == "" {
		return errors.New("--email is required")
	}
	if err := api.CheckAccount(email, name); err != nil {
		return err
	}
	ctx := context.Background()
	st, err := server.OpenStore(ctx, cfg, logger(cfg, stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	a, key, err := api.NewAccount(ctx, st, store.Account{Email: email, Name: name, CreatedAt: time.Now()})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("an account with email %s already exists", email)
	}
	if err != nil {
		return err
	}
	out := struct {
		ID     int64  `json:"id"`
		Email  string `json:"email"`
		Name   string `json:"name"`
		APIKey string `json:"apiKey"`
	}{a.ID, a.Email, a.Name, key}
	return json.NewEncoder(stdout).Encode(out)
}
