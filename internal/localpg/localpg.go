// Package localpg finds a PostgreSQL server for the demo and the tests:
// DATABASE_URL when set, else a server on 127.0.0.1:5432, else a private
// throwaway cluster started from the installed PostgreSQL binaries.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

// DefaultURL is the local server on the default port, as a fresh Debian or
// compose install has it (trust auth for local development).
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// clusterPort is the port of the throwaway cluster; fixed so that test
// packages running in parallel share one cluster instead of starting many.
const clusterPort = "54329"

// Find returns the URL of a server to use. With explicit set it is returned
// as is. Otherwise a server answering on 127.0.0.1:5432 is used, and as a last
// resort a cluster in dir (created with initdb, started with pg_ctl and left
// running for the next caller) is.
func Find(ctx context.Context, explicit, dir string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if answers("127.0.0.1:5432") {
		return DefaultURL, nil
	}
	url := "postgres://postgres@127.0.0.1:" + clusterPort + "/postgres?sslmode=disable"
	if answers("127.0.0.1:" + clusterPort) {
		return url, nil
	}
	if err := startCluster(ctx, dir); err != nil {
		return "", fmt.Errorf("no PostgreSQL on 127.0.0.1:5432 and no throwaway cluster: %w", err)
	}
	return url, nil
}

func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// binDir finds initdb: on PATH, else the newest /usr/lib/postgresql/N/bin.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("initdb not found (install PostgreSQL or set DATABASE_URL)")
}

func startCluster(ctx context.Context, dir string) error {
	bin, err := binDir()
	if err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8")
		if out, err := asPostgresUser(cmd, dir).CombinedOutput(); err != nil {
			return fmt.Errorf("initdb: %w: %s", err, out)
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "log"), "-w",
		"-o", "-p "+clusterPort+" -k "+dir+" -c listen_addresses=127.0.0.1 -c fsync=off", "start")
	if out, err := asPostgresUser(cmd, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s", err, out)
	}
	return nil
}
