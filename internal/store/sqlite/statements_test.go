package sqlite

import "testing"

func TestRowShape(t *testing.T) {
	for _, c := range []struct {
		row          string
		shared, cols int
		wantErr      bool
	}{
		{row: "(?, ?, ?)", cols: 3},
		{row: "(?1, ?2, ?, ?, 'pending')", shared: 2, cols: 2},
		{row: "(?1, ?, ?1)", wantErr: true}, // ?1 after an anonymous one
		{row: "('literal')"},
	} {
		shared, cols, err := rowShape(c.row)
		if (err != nil) != c.wantErr || shared != c.shared || cols != c.cols {
			t.Errorf("rowShape(%q) = %d, %d, %v; want %d, %d, error %v", c.row, shared, cols, err, c.shared, c.cols, c.wantErr)
		}
	}
}
