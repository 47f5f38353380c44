package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

const accountColumns = `id, email, name, created_at, updated_at`

func scanAccount(row interface{ Scan(...any) error }) (store.Account, error) {
	var a store.Account
	var created, updated int64
	if err := row.Scan(&a.ID, &a.Email, &a.Name, &created, &updated); err != nil {
		return a, err
	}
	a.CreatedAt, a.UpdatedAt = fromMs(created), fromMs(updated)
	return a, nil
}

// isUnique reports whether err is a UNIQUE constraint violation.
func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func (s *Store) CreateAccount(ctx context.Context, a store.Account, key store.NewAPIKey) (store.Account, store.APIKey, error) {
	var k store.APIKey
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := ms(a.CreatedAt)
		err := tx.QueryRowContext(ctx,
			`INSERT INTO accounts (email, name, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING id`,
			a.Email, a.Name, now, now).Scan(&a.ID)
		if isUnique(err) {
			return store.ErrConflict
		}
		if err != nil {
			return fmt.Errorf("insert account: %w", err)
		}
		k, err = insertAPIKey(ctx, tx, a.ID, key, a.CreatedAt)
		return err
	})
	if err != nil {
		return store.Account{}, store.APIKey{}, err
	}
	a.CreatedAt = fromMs(ms(a.CreatedAt))
	a.UpdatedAt = a.CreatedAt
	return a, k, nil
}

func (s *Store) GetAccount(ctx context.Context, id int64) (store.Account, error) {
	a, err := scanAccount(s.rdb.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id))
	if err != nil {
		return a, fmt.Errorf("get account %d: %w", id, notFound(err))
	}
	return a, nil
}

func (s *Store) ListAccounts(ctx context.Context, p store.Page) ([]store.Account, int, error) {
	var total int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count accounts: %w", err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY id DESC LIMIT ? OFFSET ?`, p.Size, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	list := []store.Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list accounts: %w", err)
		}
		list = append(list, a)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list accounts: %w", err)
	}
	return list, total, nil
}

func (s *Store) UpdateAccount(ctx context.Context, id int64, update func(*store.Account) error) (store.Account, error) {
	var a store.Account
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id))
		if err != nil {
			return fmt.Errorf("get account %d: %w", id, notFound(err))
		}
		if err := update(&a); err != nil {
			return err
		}
		a.ID = id
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET email = ?, name = ?, updated_at = ? WHERE id = ?`,
			a.Email, a.Name, ms(a.UpdatedAt), id)
		if isUnique(err) {
			return store.ErrConflict
		}
		if err != nil {
			return fmt.Errorf("update account %d: %w", id, err)
		}
		a.UpdatedAt = fromMs(ms(a.UpdatedAt))
		return nil
	})
	return a, err
}

func insertAPIKey(ctx context.Context, tx *sql.Tx, accountID int64, key store.NewAPIKey, now time.Time) (store.APIKey, error) {
	k := store.APIKey{AccountID: accountID, Prefix: key.Prefix, CreatedAt: fromMs(ms(now))}
	err := tx.QueryRowContext(ctx, `INSERT INTO api_keys (account_id, prefix, hash, created_at) VALUES (?, ?, ?, ?) RETURNING id`,
		accountID, key.Prefix, key.Hash, ms(now)).Scan(&k.ID)
	if err != nil {
		return k, fmt.Errorf("insert api key: %w", err)
	}
	return k, nil
}

func (s *Store) CreateAPIKey(ctx context.Context, accountID int64, key store.NewAPIKey, now time.Time) (store.APIKey, error) {
	var k store.APIKey
	err := s.write(ctx, func(tx *sql.Tx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = ?`, accountID).Scan(&exists); err != nil {
			return fmt.Errorf("get account %d: %w", accountID, notFound(err))
		}
		var err error
		k, err = insertAPIKey(ctx, tx, accountID, key, now)
		return err
	})
	return k, err
}

func scanAPIKey(row interface{ Scan(...any) error }) (store.APIKey, error) {
	var k store.APIKey
	var created int64
	var used sql.NullInt64
	if err := row.Scan(&k.ID, &k.AccountID, &k.Prefix, &created, &used); err != nil {
		return k, err
	}
	k.CreatedAt, k.LastUsedAt = fromMs(created), fromMs(used.Int64)
	return k, nil
}

const apiKeyColumns = `id, account_id, prefix, created_at, last_used_at`

func (s *Store) ListAPIKeys(ctx context.Context, accountID int64) ([]store.APIKey, error) {
	if _, err := s.GetAccount(ctx, accountID); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE account_id = ? ORDER BY id DESC`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	list := []store.APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		list = append(list, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return list, nil
}

func (s *Store) DeleteAPIKey(ctx context.Context, accountID, keyID int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM api_keys WHERE id = ? AND account_id = ?`, keyID, accountID)
		if err != nil {
			return fmt.Errorf("delete api key %d: %w", keyID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("delete api key %d: %w", keyID, store.ErrNotFound)
		}
		return nil
	})
}

func (s *Store) LookupAPIKey(ctx context.Context, hash []byte) (store.APIKey, error) {
	k, err := scanAPIKey(s.reads.apiKeyByHash.QueryRowContext(ctx, hash))
	if err != nil {
		return k, fmt.Errorf("look up api key: %w", notFound(err))
	}
	return k, nil
}

func (s *Store) TouchAPIKey(ctx context.Context, keyID int64, at time.Time) error {
	return s.writeKeeping(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, ms(at), keyID); err != nil {
			return fmt.Errorf("touch api key %d: %w", keyID, err)
		}
		return nil
	})
}
