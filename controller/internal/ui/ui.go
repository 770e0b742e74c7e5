// Package ui serves the operator web UI: plain HTML, CSS and JavaScript
// modules embedded in the binary, no build step, nothing loaded from
// elsewhere. The UI talks to the same /api the CLI uses.
package ui

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
)

//go:embed static
var files embed.FS

// csp allows only what the controller itself serves.
const csp = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"

// Mount registers the UI on app: the page at /, its assets under /ui/.
func Mount(app *fiber.App) {
	static, _ := fs.Sub(files, "static")
	index, _ := fs.ReadFile(static, "index.html")
	headers := func(c *fiber.Ctx) error {
		c.Set("Content-Security-Policy", csp)
		c.Set("X-Content-Type-Options", "nosniff")
		c.Set("Referrer-Policy", "no-referrer")
		return c.Next()
	}
	app.Get("/", headers, func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		c.Set(fiber.HeaderCacheControl, "no-cache")
		return c.Send(index)
	})
	app.Use("/ui", headers, filesystem.New(filesystem.Config{Root: http.FS(static), MaxAge: 0}))
}
