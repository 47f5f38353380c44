package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/store"
)

const accountColumns = `id, email, name, created_at, updated_at`

func scanAccount(row pgx.Row) (store.Account, error) {
	var a store.Account
	if err := row.Scan(&a.ID, &a.Email, &a.Name, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return a, err
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, nil
}

func (s *Store) CreateAccount(ctx context.Context, a store.Account, key store.NewAPIKey) (store.Account, store.APIKey, error) {
	a.CreatedAt = ts(a.CreatedAt)
	a.UpdatedAt = a.CreatedAt
	k := store.APIKey{Prefix: key.Prefix, CreatedAt: a.CreatedAt}
	// One statement, so the account and its first key are committed together.
	err := s.pool.QueryRow(ctx, `WITH a AS (
			INSERT INTO accounts (email, name, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING id
		), k AS (
			INSERT INTO api_keys (account_id, prefix, hash, created_at) SELECT id, $4, $5, $3 FROM a RETURNING id
		)
		SELECT a.id, k.id FROM a, k`,
		a.Email, a.Name, a.CreatedAt, key.Prefix, key.Hash).Scan(&a.ID, &k.ID)
	if uniqueViolation(err, "accounts_email") {
		return store.Account{}, store.APIKey{}, fmt.Errorf("create account: email %q: %w", a.Email, store.ErrConflict)
	}
	if err != nil {
		return store.Account{}, store.APIKey{}, fmt.Errorf("insert account: %w", err)
	}
	k.AccountID = a.ID
	return a, k, nil
}

func (s *Store) GetAccount(ctx context.Context, id int64) (store.Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1`, id))
	if err != nil {
		return a, fmt.Errorf("get account %d: %w", id, notFound(err))
	}
	return a, nil
}

func (s *Store) ListAccounts(ctx context.Context, p store.Page) ([]store.Account, int, error) {
	return listPage(ctx, s.pool, "accounts", accountColumns, "", nil, p, scanAccount)
}

// listPage counts the rows of table that match where (a condition on args; empty for all of
// them) and reads page p of them, newest first, in one round trip. table names them in errors.
func listPage[T any](ctx context.Context, pool *pgxpool.Pool, table, columns, where string, args []any, p store.Page,
	scan func(pgx.Row) (T, error)) ([]T, int, error) {
	if where != "" {
		where = " WHERE " + where
	}
	n := len(args)
	b := &pgx.Batch{}
	b.Queue(`SELECT count(*) FROM `+table+where, args...)
	b.Queue(fmt.Sprintf(`SELECT %s FROM %s%s ORDER BY id DESC LIMIT $%d OFFSET $%d`, columns, table, where, n+1, n+2),
		append(args[:n:n], p.Size, p.Offset())...)
	br := pool.SendBatch(ctx, b)
	defer br.Close()
	var total int
	if err := br.QueryRow().Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count %s: %w", table, err)
	}
	rows, _ := br.Query()
	list, err := collect(rows, scan)
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", table, err)
	}
	return list, total, br.Close()
}

// collect scans every row with scan; the list is empty, never nil, when there are none.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	defer rows.Close()
	list := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	return list, rows.Err()
}

func (s *Store) UpdateAccount(ctx context.Context, id int64, update func(*store.Account) error) (store.Account, error) {
	var a store.Account
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		// FOR NO KEY UPDATE serialises updates of the account without holding up inserts of
		// its keys and webhooks (their foreign keys lock it FOR KEY SHARE).
		a, err = scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, id))
		if err != nil {
			return fmt.Errorf("get account %d: %w", id, notFound(err))
		}
		if err := update(&a); err != nil {
			return err
		}
		a.ID = id
		a.UpdatedAt = ts(a.UpdatedAt)
		_, err = tx.Exec(ctx, `UPDATE accounts SET email = $1, name = $2, updated_at = $3 WHERE id = $4`,
			a.Email, a.Name, a.UpdatedAt, id)
		if uniqueViolation(err, "accounts_email") {
			return fmt.Errorf("update account %d: email %q: %w", id, a.Email, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("update account %d: %w", id, err)
		}
		return nil
	})
	return a, err
}

func (s *Store) CreateAPIKey(ctx context.Context, accountID int64, key store.NewAPIKey, now time.Time) (store.APIKey, error) {
	k := store.APIKey{AccountID: accountID, Prefix: key.Prefix, CreatedAt: ts(now)}
	err := s.pool.QueryRow(ctx, `INSERT INTO api_keys (account_id, prefix, hash, created_at)
		SELECT id, $2, $3, $4 FROM accounts WHERE id = $1 RETURNING id`,
		accountID, key.Prefix, key.Hash, k.CreatedAt).Scan(&k.ID)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return k, fmt.Errorf("get account %d: %w", accountID, store.ErrNotFound)
		}
		return k, fmt.Errorf("insert api key: %w", err)
	}
	return k, nil
}

const apiKeyColumns = `id, account_id, prefix, created_at, last_used_at`

func scanAPIKey(row pgx.Row) (store.APIKey, error) {
	var k store.APIKey
	var used pgtype.Timestamptz
	if err := row.Scan(&k.ID, &k.AccountID, &k.Prefix, &k.CreatedAt, &used); err != nil {
		return k, err
	}
	k.CreatedAt, k.LastUsedAt = k.CreatedAt.UTC(), fromTS(used)
	return k, nil
}

func (s *Store) ListAPIKeys(ctx context.Context, accountID int64) ([]store.APIKey, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)`, accountID)
	b.Queue(`SELECT `+apiKeyColumns+` FROM api_keys WHERE account_id = $1 ORDER BY id DESC`, accountID)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	var exists bool
	if err := br.QueryRow().Scan(&exists); err != nil {
		return nil, fmt.Errorf("get account %d: %w", accountID, err)
	}
	if !exists {
		return nil, fmt.Errorf("get account %d: %w", accountID, store.ErrNotFound)
	}
	rows, _ := br.Query()
	list, err := collect(rows, scanAPIKey)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return list, br.Close()
}

func (s *Store) DeleteAPIKey(ctx context.Context, accountID, keyID int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM api_keys WHERE id = $1 AND account_id = $2`, keyID, accountID)
	if err != nil {
		return fmt.Errorf("delete api key %d: %w", keyID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete api key %d: %w", keyID, store.ErrNotFound)
	}
	return nil
}

func (s *Store) LookupAPIKey(ctx context.Context, hash []byte) (store.APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = $1`, hash))
	if err != nil {
		return k, fmt.Errorf("look up api key: %w", notFound(err))
	}
	return k, nil
}

func (s *Store) TouchAPIKey(ctx context.Context, keyID int64, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2`, ts(at), keyID); err != nil {
		return fmt.Errorf("touch api key %d: %w", keyID, err)
	}
	return nil
}
