package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/config"
	"b24learn/internal/metrics"
	"b24learn/internal/pgtest"
	"b24learn/internal/settings"
	"b24learn/internal/store"
)

// hugeUsersPortal is a self-hosted portal's REST endpoint, written by its
// owner: batch answers of full user pages whose texts are as long as the
// client keeps (1 KiB), page after page. Before each answer it notes
// the heap that survives a collection: what the reading process keeps of
// the answers so far.
type hugeUsersPortal struct {
	users        int
	deptsPerUser int // ids in each user's UF_DEPARTMENT (0: just the root)
	depts        int // departments under the root, named with 1 KiB each

	mu   sync.Mutex
	next int      // the next user id it lists
	heap []uint64 // live heap bytes at each batch, in order
	took time.Duration
}

func (h *hugeUsersPortal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/batch") {
		http.Error(w, `{"error":"ERROR_METHOD_NOT_FOUND"}`, http.StatusNotFound)
		return
	}
	var req struct {
		Cmd map[string]string `json:"cmd"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":"INVALID_REQUEST"}`, http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t0 := time.Now()
	defer func() { h.took += time.Since(t0) }()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.heap = append(h.heap, ms.HeapAlloc)

	// The user pages in the order the client chained them (u0, u1, …):
	// each continues after the one before, as $result references would.
	var keys []string
	for k := range req.Cmd {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		x, _ := strconv.Atoi(a[1:])
		y, _ := strconv.Atoi(b[1:])
		return x - y
	})
	long := strings.Repeat("x", 1<<10)
	list := "[1]"
	if h.deptsPerUser > 0 {
		ids := make([]string, h.deptsPerUser)
		for i := range ids {
			ids[i] = strconv.Itoa(i%9 + 1)
		}
		list = "[" + strings.Join(ids, ",") + "]"
	}
	result, total, next := map[string]json.RawMessage{}, map[string]int{}, map[string]int{}
	for _, k := range keys {
		method, query, _ := strings.Cut(req.Cmd[k], "?")
		switch method {
		case "department.get":
			q, _ := url.ParseQuery(query)
			start, _ := strconv.Atoi(q.Get("start"))
			var b strings.Builder
			b.WriteByte('[')
			for id := start + 1; id <= min(start+bitrix24.PageSize, h.depts+1); id++ {
				if id > start+1 {
					b.WriteByte(',')
				}
				if id == 1 {
					b.WriteString(`{"ID":"1","NAME":"Root"}`)
				} else {
					b.WriteString(`{"ID":"` + strconv.Itoa(id) + `","PARENT":"1","NAME":"` + long + `"}`)
				}
			}
			b.WriteByte(']')
			result[k] = json.RawMessage(b.String())
			if start == 0 {
				total[k] = h.depts + 1
			}
			if start+bitrix24.PageSize <= h.depts {
				next[k] = start + bitrix24.PageSize
			}
		case "user.get":
			var b strings.Builder
			b.WriteByte('[')
			for i := 0; i < bitrix24.PageSize && h.next < h.users; i++ {
				if i > 0 {
					b.WriteByte(',')
				}
				h.next++
				b.WriteString(`{"ID":"` + strconv.Itoa(h.next) + `","ACTIVE":true,"USER_TYPE":"employee","UF_DEPARTMENT":` + list + `,"NAME":"` + long +
					`","LAST_NAME":"` + long + `","WORK_POSITION":"` + long + `"}`)
			}
			b.WriteByte(']')
			result[k] = json.RawMessage(b.String())
			if strings.Contains(query, "start=0") {
				total[k] = h.users
			}
		}
	}
	body, _ := json.Marshal(map[string]any{"result": map[string]any{"result": result, "result_error": []any{},
		"result_total": total, "result_next": next, "result_time": []any{}}})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// The settings page shows every portal's tree with its employee counts,
// read on any user's open. The owner of a self-hosted portal writes its
// answers: users of kilobytes each, page after page, up to the half million
// a listing may hold (gigabytes), would be held in the process that serves
// every portal until the read ends. The read keeps the departments
// and the counts only: what it holds does not grow with the users.
func TestOrgTreeKeepsNoUsersOfAHostilePortal(t *testing.T) {
	h := &hugeUsersPortal{users: 15_000} // 3 KB a user, 7.5 MB a batch
	org := hostileTreeOrg(t, h)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	depts, err := org.OrgTree(ctx, store.Portal{ID: 1})
	if err != nil {
		t.Fatalf("tree after %d batches (%v answering): %v", len(h.heap), h.took, err)
	}
	if len(depts) != 1 || depts[0].ID != 1 || depts[0].Employees != h.users {
		t.Errorf("tree %+v, want the root with all %d users", depts, h.users)
	}
	if len(h.heap) < 7 {
		t.Fatalf("%d batches: the org was not read as the test means", len(h.heap))
	}
	// From the third batch to the last, four batches of users came in (30 MB).
	grew := int64(h.heap[len(h.heap)-1]) - int64(h.heap[2])
	t.Logf("answers took %v", h.took)
	t.Logf("%d batches; live heap %d MB at the third, %d MB at the last", len(h.heap), h.heap[2]>>20, h.heap[len(h.heap)-1]>>20)
	if grew > 12<<20 {
		t.Errorf("the read kept %d MB of the users it had counted, want them let go", grew>>20)
	}
}

// hostileTreeOrg is the settings page's tree reader on a Bitrix24 client
// whose REST endpoint is h, with no app around it.
func hostileTreeOrg(t *testing.T, h *hugeUsersPortal) bitrix24Org {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := bitrix24.New(bitrix24.Config{Endpoint: srv.URL + "/rest/", Tokens: bitrix24.NewMemoryTokenSource(nil,
		bitrix24.Token{AccessToken: "a", Expires: time.Now().Add(time.Hour), ClientEndpoint: srv.URL + "/rest/"})})
	return bitrix24Org{client: func(context.Context, store.Portal) (*bitrix24.Client, error) { return c, nil }}
}

// hostilePortalClient is the app's Bitrix24 client of an installed portal
// whose REST endpoint is h, a department selected in its settings.
func hostilePortalClient(t *testing.T, h *hugeUsersPortal) *bitrix24.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	pool, kr := pgtest.NewPool(t), apptest.Keyring(t)
	cfg := &config.Config{Keyring: kr, B24AllowPrivateHosts: true} // h listens on loopback over http
	s := newServer(Deps{Log: slog.New(slog.DiscardHandler), Config: cfg, Pool: pool, Metrics: metrics.New(),
		Clients: testClients(cfg, pool)})
	ctx := context.Background()
	p, err := store.UpsertPortal(ctx, pool, kr, store.PortalInstall{
		PortalInfo: store.PortalInfo{MemberID: randHex(16), Domain: "selfhosted.example", ClientEndpoint: srv.URL + "/rest/",
			ServerEndpoint: "https://oauth.bitrix.info/rest/", Lang: "en"},
		AccessToken: "a", RefreshToken: "r", TokenExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := settings.Save(ctx, pool, kr, p.ID, 1, func(st *settings.Settings) {
		st.Departments = settings.Scope{Selected: []int64{1}}
	}); err != nil {
		t.Fatal(err)
	}
	c, err := s.clients.Bitrix24(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// heapPeak is the most live heap h noted at a batch or that survives a
// collection now.
func heapPeak(h *hugeUsersPortal) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return slices.Max(append(h.heap, ms.HeapAlloc))
}

// Every open of the page renders the tree's names into it. A self-hosted
// portal whose 100,000 departments (the most a listing may hold) are named
// with 1 KiB each would make each open cost 100 MB and more; past a bound
// no real portal reaches the page shows no tree, as when Bitrix24 fails.
func TestOrgTreeRefusesAHostilePortalsNames(t *testing.T) {
	h := &hugeUsersPortal{depts: 10_000} // 10 MB of names
	org := hostileTreeOrg(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	depts, err := org.OrgTree(ctx, store.Portal{ID: 1})
	if !errors.Is(err, bitrix24.ErrOrgTooLarge) {
		t.Fatalf("tree of %d departments, %d batches: %v, want bitrix24.ErrOrgTooLarge", len(depts), len(h.heap), err)
	}
}

// An activation request's summary counts the employees in scope, reading
// the whole org as the tree does: of a self-hosted portal's users it keeps
// only what the count needs, their ids and departments.
func TestActivationCountKeepsNoUsersOfAHostilePortal(t *testing.T) {
	h := &hugeUsersPortal{users: 15_000} // 3 KB a user, 7.5 MB a batch
	c := hostilePortalClient(t, h)
	// Not through employeesInScope: its 15 s bound is not what this test
	// measures, and a loaded machine under -race may need longer.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if n, err := countInScope(ctx, c, settings.Scope{Selected: []int64{1}}, scopeBytes); err != nil || n != h.users {
		t.Fatalf("employees in scope %d, %v; want %d", n, err, h.users)
	}
	if len(h.heap) < 7 {
		t.Fatalf("%d batches: the org was not read as the test means", len(h.heap))
	}
	grew := int64(h.heap[len(h.heap)-1]) - int64(h.heap[2])
	t.Logf("%d batches; live heap %d MB at the third, %d MB at the last", len(h.heap), h.heap[2]>>20, h.heap[len(h.heap)-1]>>20)
	if grew > 12<<20 {
		t.Errorf("the count kept %d MB of the users' texts, want them let go", grew>>20)
	}
}

// What the count keeps, the users' department lists, is bounded as a
// whole: past the bound the read stops and the count is "not known".
func TestActivationCountStopsAtItsBound(t *testing.T) {
	h := &hugeUsersPortal{users: 15_000, deptsPerUser: 100} // 800 bytes of ids a user, 2 MB a batch
	c := hostilePortalClient(t, h)
	ctx := context.Background()
	if n, err := countInScope(ctx, c, settings.Scope{Selected: []int64{1}}, 1<<20); !errors.Is(err, errScopeTooLarge) {
		t.Fatalf("employees in scope %d, %v past the bound, want errScopeTooLarge", n, err)
	}
	if len(h.heap) > 1 {
		t.Errorf("the read went on for %d batches past a bound one batch passes", len(h.heap))
	}
}

// The read itself stops at the names' bound. A self-hosted portal may list
// 100,000 departments named with 1 KiB each (100 MB): read whole before
// they are counted, each page open would hold them all in the process that
// serves every portal. The read ends at the page that passes the bound, a
// few batches in, holding no more than the bound and a batch.
func TestOrgTreeStopsReadingAHostilePortalsNames(t *testing.T) {
	h := &hugeUsersPortal{depts: bitrix24.DefaultMaxDepartments - 1} // the root makes 100,000: 100 MB of names
	org := hostileTreeOrg(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	depts, err := org.OrgTree(ctx, store.Portal{ID: 1})
	if !errors.Is(err, bitrix24.ErrOrgTooLarge) {
		t.Fatalf("tree of %d departments, %d batches: %v, want bitrix24.ErrOrgTooLarge", len(depts), len(h.heap), err)
	}
	peak := heapPeak(h)
	grew := int64(peak) - int64(h.heap[0])
	t.Logf("%d batches (%v answering); live heap %d MB at the first, at most %d MB after", len(h.heap), h.took, h.heap[0]>>20, peak>>20)
	// 8 MB of names past the bound stop it; a batch holds 2.5 MB of them.
	if len(h.heap) > 6 {
		t.Errorf("%d batches read, want the read to stop within a batch of the %d MB bound", len(h.heap), bitrix24.DefaultMaxDepartmentNameBytes>>20)
	}
	if grew > 24<<20 {
		t.Errorf("the read held %d MB of department names, want at most the bound and a batch", grew>>20)
	}
}

// An activation request's count reads the departments whole, as the tree
// does: their names are bounded the same way, the read ending a batch past
// the bound rather than after 100 MB of them.
func TestActivationCountStopsReadingAHostilePortalsNames(t *testing.T) {
	h := &hugeUsersPortal{depts: bitrix24.DefaultMaxDepartments - 1}
	c := hostilePortalClient(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if n, err := countInScope(ctx, c, settings.Scope{Selected: []int64{1}}, scopeBytes); !errors.Is(err, bitrix24.ErrOrgTooLarge) {
		t.Fatalf("employees in scope %d, %v after %d batches, want bitrix24.ErrOrgTooLarge", n, err, len(h.heap))
	}
	peak := heapPeak(h)
	t.Logf("%d batches; live heap %d MB at the first, at most %d MB after", len(h.heap), h.heap[0]>>20, peak>>20)
	if len(h.heap) > 6 {
		t.Errorf("%d batches read, want the read to stop within a batch of the bound", len(h.heap))
	}
	if grew := int64(peak) - int64(h.heap[0]); grew > 24<<20 {
		t.Errorf("the count held %d MB of department names, want at most the bound and a batch", grew>>20)
	}
}
