package syncer

import (
	"context"
	"slices"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

func TestLeftEstimate(t *testing.T) {
	for _, c := range []struct {
		name string
		p    RunProgress
		left time.Duration
		ok   bool
	}{
		{"not writing yet", RunProgress{Phase: PhaseRead, Planned: 100, Done: 50, Elapsed: time.Minute}, 0, false},
		{"nothing planned", RunProgress{Phase: PhaseWrite}, 0, false},
		{"nothing done", RunProgress{Phase: PhaseWrite, Planned: 1000, Elapsed: time.Minute}, 0, false},
		{"too few done", RunProgress{Phase: PhaseWrite, Planned: 1000, Done: estimateMinDone - 1, Elapsed: time.Minute}, 0, false},
		{"too early", RunProgress{Phase: PhaseWrite, Planned: 1000, Done: 500, Elapsed: estimateAfter - time.Millisecond}, 0, false},
		{"half way", RunProgress{Phase: PhaseWrite, Planned: 1000, Done: 500, Elapsed: 2 * time.Minute}, 2 * time.Minute, true},
		{"a tenth", RunProgress{Phase: PhaseWrite, Planned: 10000, Done: 1000, Elapsed: 30 * time.Second}, 270 * time.Second, true},
		{"all but one", RunProgress{Phase: PhaseWrite, Planned: 3000, Done: 2999, Elapsed: 2999 * time.Millisecond * 10}, 10 * time.Millisecond, true},
		{"all done", RunProgress{Phase: PhaseWrite, Planned: 3000, Done: 3000, Elapsed: time.Second}, 0, true},
		{"more done than planned", RunProgress{Phase: PhaseWrite, Planned: 10, Done: 12, Elapsed: time.Second}, 0, true},
	} {
		left, ok := c.p.Left()
		if ok != c.ok || left != c.left {
			t.Errorf("%s: Left() = %v, %v; want %v, %v", c.name, left, ok, c.left, c.ok)
		}
	}
}

// A sync of 2,500 employees against a Learn that answers in 50 ms stores its
// phases in order and its done count while it writes, at most once per
// ProgressEvery: every UPDATE of the run's progress is logged by a trigger
// with the database's clock (the recorder's groups also count their items
// on the row, in their own transactions; those are not progress writes).
func TestProgressWritesAreThrottled(t *testing.T) {
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Latency: 50 * time.Millisecond}})
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `
		CREATE TABLE progress_log (n serial, phase text, planned int, done int, at timestamptz);
		CREATE FUNCTION log_progress() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO progress_log (phase, planned, done, at) VALUES (NEW.phase, NEW.planned, NEW.done, clock_timestamp());
			RETURN NEW;
		END $$;
		CREATE TRIGGER log_progress AFTER UPDATE ON sync_runs FOR EACH ROW
			WHEN (NEW.status = 'running' AND (NEW.phase, NEW.planned, NEW.done) IS DISTINCT FROM (OLD.phase, OLD.planned, OLD.done))
			EXECUTE FUNCTION log_progress();`); err != nil {
		t.Fatal(err)
	}
	id, _ := e.addPortal(b24sim.GenerateOrg(31, 2500, 20))
	rep := e.run(id, TriggerManual)
	if rep.Counts["user.create"] < 1000 {
		t.Fatalf("run counts %v", rep.Counts)
	}

	type row struct {
		phase         string
		planned, done int
		at            time.Time
	}
	rows, err := e.pool.Query(ctx, `SELECT phase, planned, done, at FROM progress_log ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	var log []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.phase, &r.planned, &r.done, &r.at); err != nil {
			t.Fatal(err)
		}
		log = append(log, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	var phases []string
	for _, r := range log {
		if len(phases) == 0 || phases[len(phases)-1] != r.phase {
			phases = append(phases, r.phase)
		}
	}
	// Which read ends first varies; the rest is fixed.
	reads := phases[:max(0, len(phases)-3)]
	if len(phases) < 5 || !slices.Equal(phases[len(phases)-3:], []string{"plan", "write", "finish"}) ||
		len(reads) < 2 || reads[0] != "read_learn" || reads[1] != "read" || len(reads) > 3 ||
		(len(reads) == 3 && reads[2] != "read_learn" && reads[2] != "read_bitrix24") {
		t.Fatalf("phases %v, want read_learn, read, [read_learn|read_bitrix24], plan, write, finish", phases)
	}

	var writes []row
	var started time.Time // the write phase's first row: the ticker starts with it
	for _, r := range log {
		if r.phase == "write" && r.done > 0 {
			writes = append(writes, r)
		}
		if r.phase == "write" && started.IsZero() {
			started = r.at
		}
	}
	planned := 0
	for _, r := range log {
		if r.phase == "write" {
			planned = r.planned
			break
		}
	}
	if want := rep.Plan.Applied(); planned != want {
		t.Errorf("planned %d, want the plan's %d steps", planned, want)
	}
	if len(writes) < 3 {
		t.Fatalf("%d done-count updates while writing, want at least 3 (is the write phase too short? %v)", len(writes), rep.Phases["apply"])
	}
	last := writes[len(writes)-1]
	if last.done != planned {
		t.Errorf("last done count %d, want %d", last.done, planned)
	}
	for i := 1; i < len(writes); i++ {
		if writes[i].done <= writes[i-1].done {
			t.Errorf("done count went %d → %d", writes[i-1].done, writes[i].done)
		}
	}
	// The ticker's ticks are ProgressEvery apart. An UPDATE may be late on
	// a loaded machine, so two may land in one tick's span (a late one and
	// the next on time), never more: an unthrottled writer would put one
	// there per step. The last, at the end of the writes, comes any time.
	perTick := map[time.Duration]int{}
	for _, r := range writes[:len(writes)-1] {
		tick := r.at.Sub(started) / ProgressEvery
		if perTick[tick]++; perTick[tick] > 2 {
			t.Errorf("%d done-count updates within tick %d, want at most 2", perTick[tick], tick)
		}
	}
	// One update per tick since the write phase began, one at the end, and
	// one more for a tick that fell just before the end. Counting from the
	// first update instead fails when that update is itself late.
	writing := last.at.Sub(started)
	if max := int(writing/ProgressEvery) + 2; len(writes) > max {
		t.Errorf("%d done-count updates in %v of writing, want at most %d", len(writes), writing, max)
	}
	t.Logf("%d steps written in %v; %d done-count updates", planned, rep.Phases["apply"], len(writes))
}
