package sqlstore

import "testing"

func TestSchemaVersionCountsMigrations(t *testing.T) {
	if SchemaVersion != len(migrations) {
		t.Fatalf("SchemaVersion %d, but there are %d migrations", SchemaVersion, len(migrations))
	}
}

func TestDialectPlaceholders(t *testing.T) {
	cases := []struct {
		d    dialect
		in   string
		want string
	}{
		{sqliteDialect, "a = ? AND b IN (?, ?)", "a = ? AND b IN (?, ?)"},
		{pgDialect, "a = ? AND b IN (?, ?)", "a = $1 AND b IN ($2, $3)"},
		{pgDialect, "no placeholders", "no placeholders"},
	}
	for _, c := range cases {
		if got := c.d.q(c.in); got != c.want {
			t.Errorf("%s: q(%q) = %q, want %q", c.d.name, c.in, got, c.want)
		}
	}
}
