// Package browsertest starts Debian's headless Chromium for the browser
// tests, through chromedp, and collects the JavaScript errors pages throw.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package puts the browser;
// .ci/run installs it.
const ChromiumPath = "/usr/bin/chromium"

// Browser is one headless Chromium with a fresh profile.
type Browser struct {
	// Ctx runs chromedp actions in the browser's tab.
	Ctx context.Context

	mu     sync.Mutex
	errors []string
}

// Start launches Chromium at 1280×900 with the given UI language, bounded by
// timeout, or skips the test when Chromium is not installed. BX24.js, served
// from Bitrix24's CDN that tests cannot reach, is blocked, so the pages show
// that they work without it.
func Start(t testing.TB, lang string, timeout time.Duration) *Browser {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Skipf("Chromium is not installed at %s (apt-get install chromium; .ci/run installs it): browser test skipped", ChromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("lang", lang),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancelTimeout)

	b := &Browser{Ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		if ex, ok := ev.(*runtime.EventExceptionThrown); ok {
			b.mu.Lock()
			b.errors = append(b.errors, (&chromedp.ExceptionError{ExceptionDetails: ex.ExceptionDetails}).Error())
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("browsertest: start Chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("browsertest: start Chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{
		URLPatterns: []*network.BlockPattern{{URLPattern: "*://api.bitrix24.com/*", Block: true}}}); err != nil {
		t.Fatalf("browsertest: block BX24.js: %v", err)
	}
	return b
}

// JSErrors returns the uncaught JavaScript exceptions seen so far.
func (b *Browser) JSErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// EvalInFrame runs expr in the tab's child frame whose URL inFrame accepts,
// in an isolated world: it shares the frame's DOM, not its globals, and
// reaches a frame of another origin than the page (the app's iframe inside
// the portal's page). A promise is awaited; out, unless nil, takes the
// result's JSON.
func EvalInFrame(ctx context.Context, inFrame func(url string) bool, expr string, out any) error {
	raw, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		tree, err := cdp.Call(ctx, t, cdppage.GetFrameTree, cdp.Empty{})
		if err != nil {
			return nil, err
		}
		var fid cdp.FrameID
		for _, c := range tree.FrameTree.ChildFrames {
			if inFrame(c.Frame.URL) {
				fid = c.Frame.ID
			}
		}
		if fid == "" {
			return nil, errors.New("no such frame")
		}
		world, err := cdp.Call(ctx, t, cdppage.CreateIsolatedWorld, cdppage.CreateIsolatedWorldParams{FrameID: fid, WorldName: "test"})
		if err != nil {
			return nil, err
		}
		return chromedp.Evaluate[[]byte](expr, func(p *runtime.EvaluateParams) {
			p.ContextID = world.ExecutionContextID
			p.AwaitPromise = new(true)
		})(ctx, t)
	})
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}
