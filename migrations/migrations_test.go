package migrations_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestUpDownUp(t *testing.T) {
	_, url := pgtest.NewEmpty(t)
	ctx := context.Background()

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := migrations.Check(ctx, conn); !errors.Is(err, migrations.ErrOutOfDate) {
		t.Fatalf("Check on empty database = %v, want ErrOutOfDate", err)
	}

	for i, step := range []struct {
		name string
		run  func() error
		want uint
	}{
		{"up", func() error { return migrations.Up(url) }, migrations.Latest()},
		{"down", func() error { return migrations.Down(url, 0) }, 0},
		{"up again", func() error { return migrations.Up(url) }, migrations.Latest()},
		{"down one", func() error { return migrations.Down(url, 1) }, migrations.Latest() - 1},
		{"up last", func() error { return migrations.Up(url) }, migrations.Latest()},
	} {
		if err := step.run(); err != nil {
			t.Fatalf("step %d %s: %v", i, step.name, err)
		}
		v, dirty, err := migrations.Version(url)
		if err != nil || dirty || v != step.want {
			t.Fatalf("after %s: version %d dirty %v err %v, want %d", step.name, v, dirty, err, step.want)
		}
	}
	if err := migrations.Check(ctx, conn); err != nil {
		t.Fatalf("Check after up: %v", err)
	}
	if migrations.Latest() < 2 {
		t.Fatalf("Latest() = %d, want at least 2", migrations.Latest())
	}
}
