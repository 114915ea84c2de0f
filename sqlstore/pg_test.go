package sqlstore_test

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

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/xenflow/xenflow/internal/oracle"
)

// pgServer is the PostgreSQL server the test binary starts once.
type pgServer struct {
	dir  string
	port int
	cmd  *exec.Cmd
	err  error // why there is none
	n    atomic.Int64
}

var pg pgServer

func TestMain(m *testing.M) {
	pg.err = pg.start()
	code := m.Run()
	pg.stop()
	os.Exit(code)
}

// pgBin finds a PostgreSQL program on PATH or in Debian's
// /usr/lib/postgresql/<version>/bin.
func pgBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(found) == 0 {
		return "", fmt.Errorf("%s not on PATH nor in /usr/lib/postgresql/*/bin", name)
	}
	return found[len(found)-1], nil
}

// pgFsync is the test server's fsync setting: off (the tests do not test
// PostgreSQL's durability) unless SQLSTORE_PG_FSYNC=on, for benchmarks on
// a server that syncs every commit.
func pgFsync() string {
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

func (p *pgServer) start() error {
	initdb, err := pgBin("initdb")
	if err != nil {
		return err
	}
	postgres, err := pgBin("postgres")
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
		"-c", "max_connections=200", "-c", "shared_buffers=64MB", "-c", "fsync="+pgFsync())
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
func (p *pgServer) ownDir() error {
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

func (p *pgServer) url(db string, params string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable%s", p.port, db, params)
}

// ready waits until the server answers.
func (p *pgServer) ready() error {
	db, err := sql.Open("pgx", p.url("postgres", ""))
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

// stop shuts the server down by its pid (fast shutdown) and removes its
// directory.
func (p *pgServer) stop() {
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

// pgDSN returns the DSN of a fresh, empty schema of the test server, or
// skips (fails under CI=true) when there is no server.
func pgDSN(tb testing.TB) string {
	tb.Helper()
	if pg.err != nil {
		oracle.Missing(tb, "postgresql server: %v", pg.err)
	}
	schema := fmt.Sprintf("t%d", pg.n.Add(1))
	db, err := sql.Open("pgx", pg.url("postgres", ""))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		tb.Fatal(err)
	}
	return pg.url("postgres", "&search_path="+schema)
}
