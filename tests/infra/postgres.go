package infra

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PostgresDatabase is the database LaunchPostgres creates and URL names.
const PostgresDatabase = "chatd"

const defaultPGBin = "/usr/lib/postgresql/15/bin"

// Postgres is a throw-away PostgreSQL cluster on 127.0.0.1: trust auth, no
// fsync, everything under one temporary directory. It backs FerretDB, whose
// SQLite handler cannot take concurrent writers.
type Postgres struct {
	dir, data, sock, bin string
	port                 int
	cred                 *syscall.Credential

	mu     sync.Mutex
	proc   *process
	starts int
}

// LaunchPostgres initialises a cluster, starts it and creates
// PostgresDatabase. The caller must Close it. CHATD_PG_BIN overrides where the
// PostgreSQL 15 binaries are looked for.
func LaunchPostgres() (*Postgres, error) {
	bin := os.Getenv("CHATD_PG_BIN")
	if bin == "" {
		bin = defaultPGBin
	}
	for _, b := range []string{"initdb", "postgres", "createdb", "psql"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("PostgreSQL 15 not found (%v): install it with `apt-get install postgresql-15` (see `make infra-deps`) or set CHATD_PG_BIN", err)
		}
	}
	cred, err := pgCredential()
	if err != nil {
		return nil, err
	}
	dir, err := makeTempDir("chatd-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{
		dir:  dir,
		data: filepath.Join(dir, "data"),
		sock: filepath.Join(dir, "sock"),
		bin:  bin,
		port: FreePort(),
		cred: cred,
	}
	if err := p.initdb(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := p.Start(); err != nil {
		p.Close()
		return nil, err
	}
	if out, err := p.run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "postgres", PostgresDatabase); err != nil {
		p.Close()
		return nil, fmt.Errorf("createdb: %v: %s", err, out)
	}
	if out, err := p.run("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "postgres",
		"-d", PostgresDatabase, "-v", "ON_ERROR_STOP=1", "-q", "-c", ginTwinsSQL); err != nil {
		p.Close()
		return nil, fmt.Errorf("psql: GIN twins of FerretDB's indexes: %v: %s", err, out)
	}
	return p, nil
}

// ginTwinsSQL gives every btree index FerretDB creates a GIN twin on its
// first key. FerretDB v1 pushes a filter's equality down to PostgreSQL as
// jsonb containment, (_jsonb -> 'key') @> value, which the btree indexes
// it builds for createIndexes (and for _id) cannot serve, so every point
// read or conditional save scanned its whole table: a view save cost PostgreSQL
// O(conversations), and most of its CPU at 500 messages/s. A GIN index on
// the same expression serves @>, as MongoDB serves these reads from the
// indexes the migrations declare. The twin is the test store's business:
// chatd and its migrations stay plain MongoDB. Each twin indexes one key
// per row, so it is updated in place (fastupdate off) rather than through
// a pending list whose cleanup, inside whichever write overflows it, would
// stall that write.
const ginTwinsSQL = `
CREATE FUNCTION ferretdb_gin_twins() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
	created record;
	tbl text;
	key text;
BEGIN
	FOR created IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE object_type = 'index' LOOP
		SELECT i.indrelid::regclass::text, pg_get_indexdef(i.indexrelid, 1, true) INTO tbl, key
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
		WHERE i.indexrelid = created.objid AND am.amname = 'btree';
		IF key LIKE '(_jsonb -> %' THEN
			EXECUTE format('CREATE INDEX ON %s USING gin (%s) WITH (fastupdate = off)', tbl, key);
		END IF;
	END LOOP;
END $$;
CREATE EVENT TRIGGER ferretdb_gin_twins ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
	EXECUTE FUNCTION ferretdb_gin_twins();
`

// pgCredential picks the user the server runs as: initdb and postgres refuse
// root, so as root we switch to the postgres account the Debian package made.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres user to run PostgreSQL as (apt-get install postgresql-15 makes one): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (p *Postgres) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	cmd.SysProcAttr = sysProcAttr(p.cred)
	return cmd.CombinedOutput()
}

func (p *Postgres) initdb() error {
	for _, d := range []string{p.data, p.sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
		if p.cred != nil {
			if err := os.Chown(d, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
				return err
			}
		}
	}
	out, err := p.run("initdb", "-D", p.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("initdb: %v: %s", err, out)
	}
	// Durability is worthless for a cluster deleted after the test, and
	// fsync dominates write latency on these machines.
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 400
shared_buffers = 64MB
# FerretDB's statements are prepared with the key as a parameter,
# _jsonb -> $1, which a generic plan cannot match to an index on
# _jsonb -> 'key'; a custom plan sees the key and uses the GIN twins below.
plan_cache_mode = force_custom_plan
`, p.port, p.sock)
	f, err := os.OpenFile(filepath.Join(p.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// URL is a pgx/libpq URL for PostgresDatabase, e.g. for FerretDB.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, PostgresDatabase)
}

// Port is the TCP port on 127.0.0.1 the server listens on, the same across
// Stop and Start.
func (p *Postgres) Port() int { return p.port }

// Pid is the running postmaster's process id; the server's other
// processes (a backend per connection, the background workers) are its
// children.
func (p *Postgres) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc.pid()
}

// Start starts the server on its port and data directory if it is not
// running, and returns once it accepts connections.
func (p *Postgres) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil && !p.proc.exited() {
		return nil
	}
	p.starts++
	proc, err := startProcess(procSpec{
		name:    "postgres",
		argv:    []string{filepath.Join(p.bin, "postgres"), "-D", p.data},
		dir:     p.dir,
		logPath: filepath.Join(p.dir, fmt.Sprintf("postgres.%d.log", p.starts)),
		cred:    p.cred,
	})
	if err != nil {
		return err
	}
	p.proc = proc
	if err := waitFor(proc, 30*time.Second, func() bool { return p.ready(proc.pid()) }); err != nil {
		proc.kill()
		return err
	}
	return nil
}

// ready reads postmaster.pid, whose status line turns "ready" once the server
// accepts connections; matching the pid keeps a stale file from a killed
// server from fooling a restart.
func (p *Postgres) ready(pid int) bool {
	b, err := os.ReadFile(filepath.Join(p.data, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) >= 8 && strings.TrimSpace(lines[0]) == strconv.Itoa(pid) &&
		bytes.Equal(bytes.TrimSpace([]byte(lines[7])), []byte("ready"))
}

// Stop shuts the server down cleanly (fast shutdown: sessions are cut, a
// checkpoint is written) and waits for it to exit.
func (p *Postgres) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.proc.stop(syscall.SIGINT, 20*time.Second)
	return nil
}

// Kill stops the server the way a crash would (immediate shutdown, no
// checkpoint); the next Start runs crash recovery.
func (p *Postgres) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.proc.stop(syscall.SIGQUIT, 5*time.Second)
}

// Close stops the server and deletes its data.
func (p *Postgres) Close() {
	p.Kill()
	os.RemoveAll(p.dir)
}

func (p *Postgres) logTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc.logTail(20)
}

// StartPostgres starts a PostgreSQL cluster for the test and returns the URL of
// an empty database in it; the cluster is removed when the test ends.
func StartPostgres(t testing.TB) string {
	t.Helper()
	start := time.Now()
	p, err := LaunchPostgres()
	if err != nil {
		t.Fatalf("infra: %v", err)
	}
	t.Logf("infra: postgres up on %d in %v", p.port, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("infra: postgres log tail:\n%s", p.logTail())
		}
		p.Close()
	})
	return p.URL()
}
