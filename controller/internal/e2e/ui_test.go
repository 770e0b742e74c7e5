package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium (Debian's package) for one test.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	path := ""
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if found, err := exec.LookPath(p); err == nil {
			path = found
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" || os.Getenv("RSGO_REQUIRE_BROWSER") == "1" {
			t.Fatal("no Chromium found; install Debian's chromium package")
		}
		t.Skip("no Chromium found; install Debian's chromium package")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-gpu", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shots saves screenshots to testdata/out (and to docs/screenshots when
// RSGO_UPDATE_SCREENSHOTS=1).
type shots struct {
	t   *testing.T
	ctx context.Context
	n   int
}

func (s *shots) take(name string) {
	s.t.Helper()
	s.n++
	if err := chromedp.Do(s.ctx, chromedp.Sleep(300*time.Millisecond)); err != nil {
		s.t.Fatal(err)
	}
	buf, err := chromedp.Run(s.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	file := fmt.Sprintf("%02d-%s.png", s.n, name)
	dirs := []string{filepath.Join("testdata", "out")}
	if os.Getenv("RSGO_UPDATE_SCREENSHOTS") == "1" {
		dirs = append(dirs, filepath.Join("..", "..", "..", "docs", "screenshots"))
	}
	for _, dir := range dirs {
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, file), buf, 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
}

// run executes browser actions with a timeout and fails the test with the
// page's state on error.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("%s: %v\npage: %s", what, err, text)
	}
}

func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// choose sets a select's value and fires change, as a person picking it.
func choose(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.value = %q; el.dispatchEvent(new Event("change")); })()`, sel, value))
}

func TestWebUI(t *testing.T) {
	t.Parallel()
	slow := stackVersion{product: "e2e.ui", version: "4.0.0", web: "slow/web:2.0.0", db: "shop/db:2.0.0"}
	u := newUpgradeEnv(t,
		stackVersion{product: "e2e.ui", version: "1.0.0", web: "shop/web:1.0.0", db: "shop/db:1.0.0"},
		stackVersion{product: "e2e.ui", version: "2.0.0", web: "shop/web:2.0.0", db: "shop/db:2.0.0"},
		stackVersion{product: "e2e.ui", version: "3.0.0", web: "shop/web:crash", db: "shop/db:2.0.0"},
		slow)
	ctx := browser(t, 1280, 900)
	shot := &shots{t: t, ctx: ctx}
	base := "http://" + u.c.httpAddr + "/"

	// Sign in.
	run(t, ctx, "sign-in page", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#token")))
	shot.take("signin")
	run(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS("#token"), u.c.token), chromedp.Click(chromedp.CSS("form button[type=submit]")),
		chromedp.WaitVisible(`//td//a[text()="docker"]`))
	if s := textOf(t, ctx, "tbody .status"); s != "online" {
		t.Errorf("environment status shown as %q", s)
	}
	shot.take("environments")

	// Deploy 1.0.0 from the catalog; the form shows the server's
	// per-variable errors first.
	run(t, ctx, "catalog", chromedp.Navigate(base+"#/catalog"), chromedp.WaitVisible(`//button[text()="Deploy 1.0.0"]`))
	shot.take("catalog")
	run(t, ctx, "deploy dialog", chromedp.Click(`//button[text()="Deploy 1.0.0"]`), chromedp.WaitVisible(chromedp.CSS("#var-HTTP_PORT")))
	// The server's per-variable errors appear next to their fields: drop
	// the browser's own check so the server sees a missing password.
	run(t, ctx, "server-side field error",
		chromedp.SetValue(chromedp.CSS("#deploy-name"), "uidemo"),
		chromedp.SetValue(chromedp.CSS("#var-HTTP_PORT"), itoa(freePort(t))),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#var-DB_PASSWORD").removeAttribute("required")`),
		chromedp.Click(chromedp.CSS("#deploy-submit")),
		chromedp.WaitVisible(`//div[@id="var-DB_PASSWORD-err" and text()="is required"]`))
	shot.take("deploy-form-error")
	run(t, ctx, "fill deploy form", chromedp.SetValue(chromedp.CSS("#var-DB_PASSWORD"), "ui-secret"))
	shot.take("deploy-form")
	run(t, ctx, "deploy", chromedp.Click(chromedp.CSS("#deploy-submit")), chromedp.WaitVisible(chromedp.CSS("#result-success")))
	_, dep := u.c.api("GET", "/api/environments/"+u.env+"/deployments/uidemo", "")
	u.cleanup(t, dep["deployment"].(map[string]any)["id"].(string))
	shot.take("deployed")

	// The blue banner with the variables the newest version adds and drops.
	run(t, ctx, "upgrade banner", chromedp.WaitVisible(chromedp.CSS("#upgrade-banner")))
	if b := textOf(t, ctx, "#upgrade-banner"); !strings.Contains(b, "Upgrade available: 1.0.0 → 4.0.0") {
		t.Errorf("banner: %q", b)
	}
	if v := textOf(t, ctx, "#new-vars"); v != "NEW_VAR" {
		t.Errorf("new variables %q", v)
	}
	if v := textOf(t, ctx, "#removed-vars"); v != "OLD_VAR" {
		t.Errorf("removed variables %q", v)
	}
	if v := textOf(t, ctx, "main"); strings.Contains(v, "ui-secret") {
		t.Error("the password is shown on the detail page")
	}
	shot.take("upgrade-banner")

	// Upgrade to 2.0.0 with the new variable; the bar reaches 100 %.
	run(t, ctx, "upgrade dialog", chromedp.Click(chromedp.CSS("#upgrade-button")), chromedp.WaitVisible(chromedp.CSS("#upgrade-version")),
		choose("#upgrade-version", "2.0.0"), chromedp.WaitVisible(chromedp.CSS("#var-NEW_VAR")),
		chromedp.SendKeys(chromedp.CSS("#var-NEW_VAR"), "from-the-ui"))
	shot.take("upgrade-dialog")
	run(t, ctx, "upgrade", chromedp.Click(chromedp.CSS("#upgrade-confirm")), chromedp.WaitVisible(chromedp.CSS("#progress-bar")),
		chromedp.WaitVisible(chromedp.CSS("#result-success")))
	if p := textOf(t, ctx, "#progress-percent"); p != "100%" {
		t.Errorf("bar at %q after the upgrade", p)
	}
	shot.take("upgraded")
	run(t, ctx, "detail after upgrade", chromedp.WaitVisible(`//dd[@id="version" and text()="2.0.0"]`))

	// A failing upgrade: the failure with phase, then the amber banner.
	run(t, ctx, "failing upgrade", chromedp.WaitVisible(chromedp.CSS("#upgrade-button")), chromedp.Click(chromedp.CSS("#upgrade-button")),
		chromedp.WaitVisible(chromedp.CSS("#upgrade-version")), choose("#upgrade-version", "3.0.0"),
		chromedp.Sleep(300*time.Millisecond), chromedp.Click(chromedp.CSS("#upgrade-confirm")),
		chromedp.WaitVisible(chromedp.CSS("#result-failed")))
	if f := textOf(t, ctx, "#result-failed"); !strings.Contains(f, "upgrade failed in Verifying") || !strings.Contains(f, "service web") {
		t.Errorf("failure shown as %q", f)
	}
	shot.take("upgrade-failed")
	run(t, ctx, "rollback banner", chromedp.WaitVisible(chromedp.CSS("#rollback-banner")))
	if b := textOf(t, ctx, "#rollback-banner"); !strings.Contains(b, "Rollback available") || !strings.Contains(b, "Before upgrade to v3.0.0") {
		t.Errorf("rollback banner: %q", b)
	}
	shot.take("rollback-banner")

	// The rollback page asks first, then shows progress and the result.
	run(t, ctx, "rollback page", chromedp.Click(chromedp.CSS("#rollback-link")), chromedp.WaitVisible(chromedp.CSS("#rollback-confirm")))
	if c, tg := textOf(t, ctx, "#rb-current"), textOf(t, ctx, "#rb-target"); c != "3.0.0" || tg != "2.0.0" {
		t.Errorf("rollback page: current %q target %q", c, tg)
	}
	shot.take("rollback-page")
	run(t, ctx, "roll back", chromedp.Click(chromedp.CSS("#rollback-confirm")), chromedp.WaitVisible(chromedp.CSS("#result-success")))
	shot.take("rolled-back")
	run(t, ctx, "detail after rollback", chromedp.WaitVisible(`//dd[@id="status" and text()="Running"]`), chromedp.WaitVisible(`//dd[@id="version" and text()="2.0.0"]`))

	// The WebSocket dies mid-upgrade (the controller restarts): the page
	// says so, then resumes and shows the final state without a reload.
	run(t, ctx, "slow upgrade", chromedp.WaitVisible(chromedp.CSS("#upgrade-button")), chromedp.Click(chromedp.CSS("#upgrade-button")),
		chromedp.WaitVisible(chromedp.CSS("#upgrade-version")), choose("#upgrade-version", "4.0.0"),
		chromedp.Sleep(300*time.Millisecond), chromedp.Click(chromedp.CSS("#upgrade-confirm")),
		chromedp.WaitVisible(`//span[@id="live-indicator" and text()="Live"]`))
	u.c.p.stop()
	run(t, ctx, "reconnecting shown", chromedp.WaitVisible(`//span[@id="live-indicator" and text()="Reconnecting…"]`))
	shot.take("reconnecting")
	u.c.start()
	run(t, ctx, "resumed to the end", chromedp.WaitVisible(chromedp.CSS("#result-success")))
	shot.take("resumed")
	run(t, ctx, "final state", chromedp.WaitVisible(`//dd[@id="version" and text()="4.0.0"]`))

	// Phone width, and sign-out returns to sign-in.
	phone := browser(t, 390, 844)
	pshot := &shots{t: t, ctx: phone, n: 20}
	run(t, phone, "phone sign in", chromedp.EmulateViewport(390, 844), chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), u.c.token), chromedp.Click(chromedp.CSS("form button[type=submit]")),
		chromedp.WaitVisible(`//td//a[text()="docker"]`),
		chromedp.Navigate(base+"#/environments/docker/deployments/uidemo"), chromedp.WaitVisible(chromedp.CSS("#version")))
	pshot.take("phone-detail")
	run(t, phone, "sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token")))
}
