// Package catalog turns directories of Compose files with an x-rsgo block
// into products, stacks and semver-ordered versions, reports every broken
// file precisely without letting it hide the good ones, and resolves a
// version plus variable values into the shared stack spec an agent runs.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/rsgo/rsgo/shared/stack"
)

// ErrNotFound is returned for an unknown stack or version.
var ErrNotFound = errors.New("not found in catalog")

// Source is one catalog directory.
type Source struct {
	ID  string `json:"id"`
	Dir string `json:"dir"`
}

// ParseSource reads a --catalog value, "[id=]DIR".
func ParseSource(s string) (Source, error) {
	id, dir, found := strings.Cut(s, "=")
	if !found {
		dir = s
		id = filepath.Base(filepath.Clean(s))
	}
	if dir == "" {
		return Source{}, fmt.Errorf("catalog %q: empty directory", s)
	}
	if !idPattern.MatchString(id) {
		return Source{}, fmt.Errorf("catalog %q: source id %q must be lowercase letters, digits, '.', '_' or '-' (set one with id=DIR)", s, id)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Source{}, fmt.Errorf("catalog %q: %w", s, err)
	}
	return Source{ID: id, Dir: abs}, nil
}

// Version is one stack version: one file.
type Version struct {
	StackID     string     `json:"stackId"`
	Source      string     `json:"source"`
	Product     string     `json:"product"`
	ProductName string     `json:"productName"`
	Stack       string     `json:"stack"`
	Version     string     `json:"version"`
	Description string     `json:"description,omitempty"`
	File        string     `json:"file"`
	Variables   []Variable `json:"variables"`
	Services    []string   `json:"services"`

	semver  *semver.Version
	content []byte
}

// PinnedID is the stack id with this version: source:product:stack@version.
func (v *Version) PinnedID() string { return v.StackID + "@" + v.Version }

// Semver is the parsed version.
func (v *Version) Semver() *semver.Version { return v.semver }

// Spec resolves the version for one deployment. values must come from
// Resolve: validated, with defaults applied.
func (v *Version) Spec(ctx context.Context, deploymentID, name string, values map[string]string) (stack.Spec, error) {
	p, err := load(ctx, v.File, v.content, name, values)
	if err != nil {
		return stack.Spec{}, fmt.Errorf("resolve %s: %w", v.PinnedID(), err)
	}
	spec, err := toSpec(p, v, deploymentID, name)
	if err != nil {
		return stack.Spec{}, fmt.Errorf("resolve %s: %w", v.PinnedID(), err)
	}
	return spec, nil
}

// Stack is every version of one stack of one product in one source.
type Stack struct {
	ID          string `json:"id"`
	Source      string `json:"source"`
	Product     string `json:"product"`
	ProductName string `json:"productName"`
	Stack       string `json:"stack"`
	Description string `json:"description,omitempty"`
	// Versions ascend by semver precedence.
	Versions []*Version `json:"versions"`
}

// Latest is the newest stable version, or the newest pre-release when the
// stack has no stable one.
func (s *Stack) Latest() *Version {
	for i := len(s.Versions) - 1; i >= 0; i-- {
		if s.Versions[i].semver.Prerelease() == "" {
			return s.Versions[i]
		}
	}
	return s.Versions[len(s.Versions)-1]
}

// Catalog holds every source's stacks as of the last Sync.
type Catalog struct {
	sources []Source
	log     *slog.Logger

	mu       sync.RWMutex
	stacks   map[string]*Stack
	errors   []ManifestError
	syncedAt time.Time
}

// New returns an empty catalog over sources; call Sync to load it.
func New(sources []Source, log *slog.Logger) (*Catalog, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	for _, s := range sources {
		if seen[s.ID] {
			return nil, fmt.Errorf("catalog source id %q given twice; name them with id=DIR", s.ID)
		}
		seen[s.ID] = true
	}
	return &Catalog{sources: sources, log: log, stacks: map[string]*Stack{}}, nil
}

// SyncResult summarises a Sync.
type SyncResult struct {
	Stacks   int             `json:"stacks"`
	Versions int             `json:"versions"`
	Errors   []ManifestError `json:"errors"`
	SyncedAt time.Time       `json:"syncedAt"`
}

// Sync reads every source again and swaps the result in atomically.
func (c *Catalog) Sync(ctx context.Context) SyncResult {
	stacks := map[string]*Stack{}
	errs := []ManifestError{}
	versions := 0
	for _, src := range c.sources {
		files, err := listFiles(src.Dir)
		if err != nil {
			errs = append(errs, ManifestError{File: src.Dir, Message: fmt.Sprintf("cannot read catalog source %q: %v", src.ID, err)})
			continue
		}
		for _, file := range files {
			v, ferrs := readVersion(ctx, src, file)
			errs = append(errs, ferrs...)
			if v == nil {
				continue
			}
			st := stacks[v.StackID]
			if st == nil {
				st = &Stack{ID: v.StackID, Source: src.ID, Product: v.Product, ProductName: v.ProductName, Stack: v.Stack}
				stacks[v.StackID] = st
			}
			if dup := slices.IndexFunc(st.Versions, func(o *Version) bool { return o.semver.Equal(v.semver) }); dup >= 0 {
				errs = append(errs, ManifestError{File: file, Key: "x-rsgo.version",
					Message: fmt.Sprintf("duplicate version %s of %s (also in %s); this file is ignored", v.Version, v.StackID, st.Versions[dup].File)})
				continue
			}
			st.Versions = append(st.Versions, v)
			versions++
		}
	}
	for _, st := range stacks {
		sort.Slice(st.Versions, func(i, j int) bool { return st.Versions[i].semver.LessThan(st.Versions[j].semver) })
		latest := st.Latest()
		st.ProductName, st.Description = latest.ProductName, latest.Description
	}
	now := time.Now().UTC()
	c.mu.Lock()
	c.stacks, c.errors, c.syncedAt = stacks, errs, now
	c.mu.Unlock()
	for _, e := range errs {
		c.log.Warn("catalog manifest error", "err", e.Error())
	}
	c.log.Info("catalog synced", "stacks", len(stacks), "versions", versions, "errors", len(errs))
	return SyncResult{Stacks: len(stacks), Versions: versions, Errors: errs, SyncedAt: now}
}

// Stacks lists every stack, ordered by id.
func (c *Catalog) Stacks() []*Stack {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Stack, 0, len(c.stacks))
	for _, s := range c.stacks {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Errors returns the manifest errors of the last Sync.
func (c *Catalog) Errors() []ManifestError {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.errors)
}

// SyncedAt is when the last Sync finished.
func (c *Catalog) SyncedAt() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.syncedAt
}

// Stack returns one stack by id (without a version).
func (c *Catalog) Stack(id string) (*Stack, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	st := c.stacks[id]
	if st == nil {
		return nil, fmt.Errorf("stack %q: %w", id, ErrNotFound)
	}
	return st, nil
}

// Lookup resolves "source:product:stack[@version]"; without a version it is
// the stack's Latest.
func (c *Catalog) Lookup(ref string) (*Version, error) {
	id, ver, pinned := strings.Cut(ref, "@")
	st, err := c.Stack(id)
	if err != nil {
		return nil, err
	}
	if !pinned {
		return st.Latest(), nil
	}
	want, err := semver.StrictNewVersion(ver)
	if err != nil {
		return nil, fmt.Errorf("stack %q: version %q is not a semantic version: %w", id, ver, ErrNotFound)
	}
	for _, v := range st.Versions {
		if v.semver.Equal(want) {
			return v, nil
		}
	}
	return nil, fmt.Errorf("stack %q has no version %s: %w", id, ver, ErrNotFound)
}

func listFiles(dir string) ([]string, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// readVersion parses one file. It returns nil for files that are not stack
// versions and for broken ones (with their errors).
func readVersion(ctx context.Context, src Source, file string) (*Version, []ManifestError) {
	content, err := os.ReadFile(file)
	if err != nil {
		return nil, []ManifestError{{File: file, Message: err.Error()}}
	}
	p, ok, errs := parseManifest(file, content)
	if !ok || len(errs) > 0 {
		return nil, errs
	}
	v := &Version{
		StackID:     src.ID + ":" + p.meta.Product + ":" + p.meta.Stack,
		Source:      src.ID,
		Product:     p.meta.Product,
		ProductName: p.meta.Name,
		Stack:       p.meta.Stack,
		Version:     p.version.String(),
		Description: p.meta.Description,
		File:        file,
		Variables:   p.variables,
		Services:    p.services,
		semver:      p.version,
		content:     content,
	}
	if v.Variables == nil {
		v.Variables = []Variable{}
	}
	// Load once with placeholder values: what compose-go rejects, or what
	// rsgo cannot convert, is a manifest error now rather than at deploy.
	values := map[string]string{}
	for _, vr := range v.Variables {
		values[vr.Name] = vr.placeholder()
	}
	if _, err := v.Spec(ctx, "validate", "validate", values); err != nil {
		return nil, []ManifestError{{File: file, Message: err.Error()}}
	}
	return v, nil
}
