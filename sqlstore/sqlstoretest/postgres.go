// Package sqlstoretest runs a real PostgreSQL server for tests of sqlstore
// and of the programs that use it: initdb in a temporary directory,
// postgres on 127.0.0.1 on a free port with its own socket directory,
// stopped by its process id.
package sqlstoretest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/xenflow/xenflow/internal/oracle"
)

// Postgres is a PostgreSQL server a test binary started (see Start).
type Postgres struct {
	dir  string
	port int
	cmd  *exec.Cmd
	err  error // why there is none
	n    atomic.Int64
}

// Start runs initdb in a new temporary directory and starts postgres on
// 127.0.0.1 on a free port; fsync is off unless SQLSTORE_PG_FSYNC=on (for
// benchmarks on a server that syncs every commit). It never fails: a
// server that cannot be started is reported by DSN. Call it from
// TestMain, and Stop after the tests.
func Start() *Postgres {
	p := &Postgres{}
	p.err = p.start()
	return p
}

// Err says why there is no server (nil when it runs).
func (p *Postgres) Err() error { return p.err }

// Port is the server's TCP port on 127.0.0.1.
func (p *Postgres) Port() int { return p.port }

// bin finds a PostgreSQL program on PATH or in Debian's
// /usr/lib/postgresql/<version>/bin.
func bin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(found) == 0 {
		return "", fmt.Errorf("%s not on PATH nor in /usr/lib/postgresql/*/bin", name)
	}
	return found[len(found)-1], nil
}

func fsync() string {
	if os.Getenv("SQLSTORE_PG_FSYNC") == "on" {
		return "on"
	}
	return "off"
}

// asUser runs cmd as nobody when the test runs as root (postgres refuses
// root).
func asUser(cmd *exec.Cmd) {
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
}

func (p *Postgres) start() error {
	initdb, err := bin("initdb")
	if err != nil {
		return err
	}
	postgres, err := bin("postgres")
	if err != nil {
		return err
	}
	if p.dir, err = os.MkdirTemp("", "sqlstore-pg-"); err != nil {
		return err
	}
	if err := p.ownDir(); err != nil {
		return err
	}
	data := filepath.Join(p.dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	asUser(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v: %s", err, out)
	}
	if p.port, err = freePort(); err != nil {
		return err
	}
	p.cmd = exec.Command(postgres, "-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-k", p.dir,
		"-c", "max_connections=200", "-c", "shared_buffers=64MB", "-c", "fsync="+fsync())
	asUser(p.cmd)
	log, err := os.Create(filepath.Join(p.dir, "postgres.log"))
	if err != nil {
		return err
	}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		return err
	}
	return p.ready()
}

// ownDir gives the server's directory to the user it runs as.
func (p *Postgres) ownDir() error {
	if os.Geteuid() != 0 {
		return nil
	}
	if err := os.Chmod(p.dir, 0o755); err != nil {
		return err
	}
	return os.Chown(p.dir, 65534, 65534)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL is the DSN of database db as the superuser postgres, with extra
// query parameters ("&name=value…").
func (p *Postgres) URL(db, params string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable%s", p.port, db, params)
}

// ready waits until the server answers.
func (p *Postgres) ready() error {
	db, err := sql.Open("pgx", p.URL("postgres", ""))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := db.Ping()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
			return fmt.Errorf("postgres not ready: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down by its pid (fast shutdown) and removes its
// directory.
func (p *Postgres) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

// DSN returns the DSN of a fresh, empty schema of the server, or skips
// the test (fails it under CI=true) when there is no server.
func (p *Postgres) DSN(tb testing.TB) string {
	tb.Helper()
	if p.err != nil {
		oracle.Missing(tb, "postgresql server: %v", p.err)
	}
	schema := fmt.Sprintf("t%d", p.n.Add(1))
	db, err := sql.Open("pgx", p.URL("postgres", ""))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		tb.Fatal(err)
	}
	return p.URL("postgres", "&search_path="+schema)
}
