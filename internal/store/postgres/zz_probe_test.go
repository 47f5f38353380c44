package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestZZProbe(t *testing.T) {
	u := testURL(t)
	schema := newSchema(t)
	ctx := context.Background()
	conn := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		c.Exec(ctx, `SET search_path = `+pgx.Identifier{schema}.Sanitize())
		return c
	}
	setup := conn()
	setup.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize())
	setup.Exec(ctx, `SET search_path = `+pgx.Identifier{schema}.Sanitize())
	if _, err := setup.Exec(ctx, `CREATE TABLE w (id int PRIMARY KEY, ev text, status text)`); err != nil {
		t.Fatal(err)
	}
	setup.Exec(ctx, `CREATE INDEX ON w (ev)`)
	for _, prelock := range []bool{false, true} {
		for _, wait := range []bool{false, true} {
			setup.Exec(ctx, `DELETE FROM w`)
			setup.Exec(ctx, `INSERT INTO w VALUES (1, 'x', 'active'), (2, 'x', 'active'), (3, 'x', 'active')`)
			p0, tt, p := conn(), conn(), conn()
			if prelock {
				// An earlier publish holding KEY SHARE on every row while T takes its locks.
				p0.Exec(ctx, `BEGIN`)
				p0.Exec(ctx, `SELECT 1 FROM w WHERE ev = 'x' ORDER BY id FOR KEY SHARE`)
			}
			tt.Exec(ctx, `BEGIN`)
			tt.Exec(ctx, `SELECT 1 FROM w WHERE id = ANY('{1,2,3}') ORDER BY id FOR NO KEY UPDATE`)
			upgraded := make(chan struct{})
			go func() {
				tt.Exec(ctx, `SELECT id FROM w WHERE id = ANY('{1,2,3}') ORDER BY id FOR UPDATE`)
				close(upgraded)
			}()
			time.Sleep(50 * time.Millisecond)
			if prelock {
				p0.Exec(ctx, `COMMIT`)
			}
			<-upgraded
			got := make(chan string)
			go func() {
				q := `SELECT string_agg(id || '=' || status, ',') FROM (SELECT id, status FROM w WHERE ev = 'x' ORDER BY id FOR KEY SHARE) s`
				if !wait {
					// The snapshot is taken now, the rows are reached after T commits.
					q = `SELECT string_agg(id || '=' || status, ',') FROM (SELECT id, status FROM w WHERE ev = 'x' AND (SELECT pg_sleep(0.2)) IS NOT NULL ORDER BY id FOR KEY SHARE) s`
				}
				var s string
				if err := p.QueryRow(ctx, q).Scan(&s); err != nil {
					s = err.Error()
				}
				got <- s
			}()
			time.Sleep(50 * time.Millisecond)
			if _, err := tt.Exec(ctx, `UPDATE w SET status = 'disabled' FROM unnest('{3,2,1}'::int[]) AS u(id) WHERE w.id = u.id`); err != nil {
				t.Fatal(err)
			}
			tt.Exec(ctx, `COMMIT`)
			t.Log(fmt.Sprintf("prelock %v, reader blocks on T %v: reader read %s", prelock, wait, <-got))
			p0.Close(ctx)
			tt.Close(ctx)
			p.Close(ctx)
		}
	}
}
