package api

import (
	"errors"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/rsgo/rsgo/controller/internal/catalog"
)

// stackSummary is a stack in the catalog listing.
type stackSummary struct {
	ID            string   `json:"id"`
	Source        string   `json:"source"`
	Product       string   `json:"product"`
	ProductName   string   `json:"productName"`
	Stack         string   `json:"stack"`
	Description   string   `json:"description,omitempty"`
	LatestVersion string   `json:"latestVersion"`
	Versions      []string `json:"versions"`
}

// variableView hides the default of a password variable: secrets are never
// returned in clear.
type variableView struct {
	catalog.Variable
	Default    *string `json:"default,omitempty"`
	HasDefault bool    `json:"hasDefault"`
}

type versionView struct {
	*catalog.Version
	PinnedID  string         `json:"pinnedId"`
	Variables []variableView `json:"variables"`
}

func viewVersion(v *catalog.Version) versionView {
	out := versionView{Version: v, PinnedID: v.PinnedID(), Variables: make([]variableView, 0, len(v.Variables))}
	for _, vr := range v.Variables {
		vv := variableView{Variable: vr, Default: vr.Default, HasDefault: vr.Default != nil}
		if vr.Secret() {
			vv.Default = nil
		}
		out.Variables = append(out.Variables, vv)
	}
	return out
}

func summarize(st *catalog.Stack) stackSummary {
	s := stackSummary{ID: st.ID, Source: st.Source, Product: st.Product, ProductName: st.ProductName,
		Stack: st.Stack, Description: st.Description, LatestVersion: st.Latest().Version}
	for _, v := range st.Versions {
		s.Versions = append(s.Versions, v.Version)
	}
	return s
}

func (s *Server) listStacks(c *fiber.Ctx) error {
	stacks := s.cfg.Catalog.Stacks()
	out := make([]stackSummary, 0, len(stacks))
	for _, st := range stacks {
		out = append(out, summarize(st))
	}
	return c.JSON(fiber.Map{"success": true, "stacks": out, "errors": s.cfg.Catalog.Errors(), "syncedAt": s.cfg.Catalog.SyncedAt()})
}

// getStack answers for "source:product:stack" (every version, the latest
// selected) and for "...@version" (that version selected).
func (s *Server) getStack(c *fiber.Ctx) error {
	ref, err := url.PathUnescape(c.Params("stackId"))
	if err != nil {
		return apiError(fiber.StatusBadRequest, CodeBadRequest, "stack id: %v", err)
	}
	selected, err := s.cfg.Catalog.Lookup(ref)
	if errors.Is(err, catalog.ErrNotFound) {
		return apiError(fiber.StatusNotFound, CodeNotFound, "%v", err)
	}
	if err != nil {
		return err
	}
	st, err := s.cfg.Catalog.Stack(selected.StackID)
	if err != nil {
		return err
	}
	versions := make([]versionView, 0, len(st.Versions))
	for _, v := range st.Versions {
		versions = append(versions, viewVersion(v))
	}
	return c.JSON(fiber.Map{"success": true, "stack": summarize(st), "version": viewVersion(selected), "versions": versions})
}

func (s *Server) syncCatalog(c *fiber.Ctx) error {
	res := s.cfg.Catalog.Sync(c.UserContext())
	return c.JSON(fiber.Map{"success": true, "stacks": res.Stacks, "versions": res.Versions, "errors": res.Errors, "syncedAt": res.SyncedAt})
}
