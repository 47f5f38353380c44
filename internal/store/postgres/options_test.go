package postgres

import (
	"testing"
	"time"
)

func TestPoolConfig(t *testing.T) {
	const base = "postgres://u@db.invalid:5432/hookrelay?sslmode=disable"
	tests := []struct {
		name            string
		url             string
		opt             Options
		maxConns        int32
		minConns        int32
		lifetime, idle  time.Duration
		connectTimeout  time.Duration
		searchPath, app string
	}{
		{"defaults", base, Options{}, 16, 2, 30 * time.Minute, 5 * time.Minute, 5 * time.Second, "", "hookrelay"},
		{"url", base + "&pool_max_conns=40&pool_min_conns=4&pool_max_conn_lifetime=1h&pool_max_conn_idle_time=1m&connect_timeout=2&application_name=x",
			Options{}, 40, 4, time.Hour, time.Minute, 2 * time.Second, "", "x"},
		{"options win over the url", base + "&pool_max_conns=40&pool_min_conns=4",
			Options{MaxConns: 8, MinConns: 1, MaxConnLifetime: time.Minute, MaxConnIdleTime: time.Second}, 8, 1, time.Minute, time.Second, 5 * time.Second, "", "hookrelay"},
		{"min capped by max", base + "&pool_max_conns=1", Options{}, 1, 1, 30 * time.Minute, 5 * time.Minute, 5 * time.Second, "", "hookrelay"},
		{"schema", base, Options{Schema: `Tenant "7"`}, 16, 2, 30 * time.Minute, 5 * time.Minute, 5 * time.Second, `"Tenant ""7"""`, "hookrelay"},
		{"keyword/value", "host=db.invalid user=u dbname=hookrelay pool_max_conns=3", Options{}, 3, 2, 30 * time.Minute, 5 * time.Minute, 5 * time.Second, "", "hookrelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := poolConfig(tt.url, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MaxConns != tt.maxConns || cfg.MinConns != tt.minConns || cfg.MaxConnLifetime != tt.lifetime || cfg.MaxConnIdleTime != tt.idle {
				t.Errorf("pool = max %d min %d lifetime %v idle %v, want %d %d %v %v",
					cfg.MaxConns, cfg.MinConns, cfg.MaxConnLifetime, cfg.MaxConnIdleTime, tt.maxConns, tt.minConns, tt.lifetime, tt.idle)
			}
			if cfg.ConnConfig.ConnectTimeout != tt.connectTimeout {
				t.Errorf("connect timeout = %v, want %v", cfg.ConnConfig.ConnectTimeout, tt.connectTimeout)
			}
			if got := cfg.ConnConfig.RuntimeParams["search_path"]; got != tt.searchPath {
				t.Errorf("search_path = %q, want %q", got, tt.searchPath)
			}
			if got := cfg.ConnConfig.RuntimeParams["application_name"]; got != tt.app {
				t.Errorf("application_name = %q, want %q", got, tt.app)
			}
			for k := range cfg.ConnConfig.RuntimeParams {
				if len(k) > 5 && k[:5] == "pool_" {
					t.Errorf("pool parameter %s left among the connection's runtime parameters", k)
				}
			}
		})
	}
	if _, err := poolConfig("postgres://u@h/db?pool_max_conns=x", Options{}); err == nil {
		t.Error("a malformed pool_max_conns was accepted")
	}
}
