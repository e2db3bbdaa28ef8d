package infra

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Mongo is a MongoDB-wire server for tests: bin/ferretdb on the PostgreSQL
// handler, over its own Postgres. Stop and Start take both down and bring
// them back on the same port with the same data, for tests of what the
// service does while its store is away.
type Mongo struct {
	pg        *Postgres
	bin       string
	port      int
	pprofPort int

	mu     sync.Mutex
	proc   *process
	starts int
}

// ferretdbBinary finds the server built from tests/infra/ferretdb;
// CHATD_FERRETDB_BIN overrides the default bin/ferretdb of the checkout.
func ferretdbBinary() (string, error) {
	bin := os.Getenv("CHATD_FERRETDB_BIN")
	if bin == "" {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		bin = filepath.Join(root, "bin", "ferretdb")
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("FerretDB binary missing (%v): build it with `make infra-deps` (cd tests/infra/ferretdb && go build -o ../../../bin/ferretdb .)", err)
	}
	return bin, nil
}

// LaunchMongo starts PostgreSQL and FerretDB on free loopback ports and
// returns once FerretDB answers a ping. The caller must Close it.
func LaunchMongo() (*Mongo, error) {
	bin, err := ferretdbBinary()
	if err != nil {
		return nil, err
	}
	pg, err := LaunchPostgres()
	if err != nil {
		return nil, err
	}
	m := &Mongo{pg: pg, bin: bin, port: FreePort(), pprofPort: FreePort()}
	if err := m.startFerretDB(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// URI is the mongodb:// connection string; it stays valid across Stop and
// Start.
func (m *Mongo) URI() string { return fmt.Sprintf("mongodb://%s/", loopback(m.port)) }

// PprofURL is FerretDB's net/http/pprof, for profiles of the store under
// load (make bench-load takes one).
func (m *Mongo) PprofURL() string { return fmt.Sprintf("http://%s/debug/pprof", loopback(m.pprofPort)) }

// Pid is the running FerretDB's process id, for the load benchmark's CPU
// accounting.
func (m *Mongo) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc.pid()
}

// Postgres is the cluster FerretDB stores into, for tests that want to fail
// the storage under a running FerretDB rather than the whole server.
func (m *Mongo) Postgres() *Postgres { return m.pg }

// ferretdbPoolConns sizes FerretDB's pool of PostgreSQL connections, within
// the server's max_connections. FerretDB's default of 50 deadlocks under
// load: a write that holds a connection can wait for a second one, and with
// every connection held by such writes, none ever comes (seen with two chatd
// nodes at 300 messages/s: FerretDB and PostgreSQL idle, every append
// timing out). The nodes' MongoDB drivers open at most 100 connections each.
const ferretdbPoolConns = 350

func (m *Mongo) startFerretDB() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil && !m.proc.exited() {
		return nil
	}
	m.starts++
	proc, err := startProcess(procSpec{
		name: "ferretdb",
		argv: []string{m.bin, "-listen", loopback(m.port), "-handler", "postgresql",
			"-postgresql-url", m.pg.URL() + "&pool_max_conns=" + strconv.Itoa(ferretdbPoolConns), "-log-level", "warn",
			"-pprof", loopback(m.pprofPort)},
		dir:     m.pg.dir,
		logPath: filepath.Join(m.pg.dir, fmt.Sprintf("ferretdb.%d.log", m.starts)),
	})
	if err != nil {
		return err
	}
	m.proc = proc
	if err := waitFor(proc, 20*time.Second, func() bool { return ping(m.URI()) == nil }); err != nil {
		proc.kill()
		return err
	}
	return nil
}

// ping asks for the database list rather than only pinging, so that the
// answer proves FerretDB reached PostgreSQL too.
func ping(uri string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(time.Second).SetConnectTimeout(time.Second))
	if err != nil {
		return err
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	return c.Database("admin").RunCommand(ctx, bson.D{{Key: "listDatabases", Value: 1}}).Err()
}

// Stop takes the server down: FerretDB exits (clients get connection
// refused) and PostgreSQL shuts down cleanly.
func (m *Mongo) Stop() error {
	m.mu.Lock()
	m.proc.stop(syscall.SIGTERM, 10*time.Second)
	m.mu.Unlock()
	return m.pg.Stop()
}

// Start brings a stopped server back on the same port with the same data.
func (m *Mongo) Start() error {
	if err := m.pg.Start(); err != nil {
		return err
	}
	return m.startFerretDB()
}

// Kill takes the server down as a crash would: FerretDB is killed and
// PostgreSQL stops without a checkpoint.
func (m *Mongo) Kill() {
	m.mu.Lock()
	m.proc.kill()
	m.mu.Unlock()
	m.pg.Kill()
}

// Close stops everything and deletes the data.
func (m *Mongo) Close() {
	m.mu.Lock()
	m.proc.kill()
	m.mu.Unlock()
	m.pg.Close()
}

func (m *Mongo) logTail() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return "ferretdb:\n" + m.proc.logTail(20) + "\npostgres:\n" + m.pg.logTail()
}

// StartMongo starts a MongoDB-wire server for the test and returns its URI.
func StartMongo(t testing.TB) string {
	t.Helper()
	return StartMongoServer(t).URI()
}

// StartMongoServer is StartMongo for tests that also stop and restart the
// server.
func StartMongoServer(t testing.TB) *Mongo {
	t.Helper()
	start := time.Now()
	m, err := LaunchMongo()
	if err != nil {
		t.Fatalf("infra: %v", err)
	}
	t.Logf("infra: mongo (ferretdb+postgres) up at %s in %v", m.URI(), time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("infra: mongo log tail:\n%s", m.logTail())
		}
		m.Close()
	})
	return m
}
