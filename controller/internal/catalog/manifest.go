package catalog

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"go.yaml.in/yaml/v4"
)

// ManifestError is one problem with one catalog file, precise enough to fix
// it: the file, the line, and where known the service and the key.
type ManifestError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Service string `json:"service,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

func (e ManifestError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Service != "" {
		fmt.Fprintf(&b, ": service %q", e.Service)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": key %q", e.Key)
	}
	return b.String() + ": " + e.Message
}

// Compose keys rsgo implements. Anything else is a manifest error, never
// silently dropped.
var (
	topLevelKeys = []string{"services", "networks", "volumes", "version", "x-rsgo"}
	serviceKeys  = []string{"image", "command", "entrypoint", "environment", "ports", "volumes", "networks",
		"depends_on", "healthcheck", "restart", "labels", "user", "working_dir", "pull_policy"}
	healthcheckKeys   = []string{"test", "interval", "timeout", "retries", "start_period", "disable"}
	portKeys          = []string{"target", "published", "host_ip", "protocol"}
	volumeMountKeys   = []string{"type", "source", "target", "read_only"}
	serviceNetKeys    = []string{"aliases"}
	dependsOnKeys     = []string{"condition"}
	networkKeys       = []string{"driver", "internal", "labels"}
	volumeKeys        = []string{"driver", "labels"}
	explainedRejected = map[string]string{
		"env_file":       "env_file is not supported: declare the values as x-rsgo variables",
		"build":          "build is not supported: reference an image in a registry",
		"container_name": "container_name is not supported: rsgo names containers <deployment>-<service> so a stack can be deployed more than once",
		"name":           "name is not supported: the deployment name is the project name",
		"extends":        "extends is not supported: write the service out in full",
		"include":        "include is not supported: one file is one stack version",
		"profiles":       "profiles are not supported: every service of a stack version is deployed",
	}
	pullPolicies   = []string{"always", "missing", "never", "if_not_present"}
	restartPattern = regexp.MustCompile(`^(no|always|unless-stopped|on-failure(:[0-9]+)?)$`)
	idPattern      = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)
	// interpolationRef finds ${NAME...} and $NAME; $$ escapes are removed first.
	interpolationRef = regexp.MustCompile(`\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))`)
)

// meta is the x-rsgo block.
type meta struct {
	Product     string    `yaml:"product"`
	Name        string    `yaml:"name"`
	Version     string    `yaml:"version"`
	Stack       string    `yaml:"stack"`
	Description string    `yaml:"description"`
	Variables   yaml.Node `yaml:"variables"`
}

type varDecl struct {
	Type        string    `yaml:"type"`
	Label       string    `yaml:"label"`
	Description string    `yaml:"description"`
	Default     yaml.Node `yaml:"default"`
	Required    bool      `yaml:"required"`
	Pattern     string    `yaml:"pattern"`
	Min         *float64  `yaml:"min"`
	Max         *float64  `yaml:"max"`
	Options     []string  `yaml:"options"`
}

// parsed is a manifest that passed the structural checks.
type parsed struct {
	meta      meta
	version   *semver.Version
	variables []Variable
	services  []string
}

// parseManifest reads the x-rsgo block and checks the Compose keys. ok is
// false when the file is not a stack version at all (no x-rsgo block).
func parseManifest(file string, content []byte) (p parsed, ok bool, errs []ManifestError) {
	fail := func(line int, service, key, format string, a ...any) {
		errs = append(errs, ManifestError{File: file, Line: line, Service: service, Key: key, Message: fmt.Sprintf(format, a...)})
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(content, &doc); err != nil {
		// Only files that look like stack versions are worth an error.
		if strings.Contains(string(content), "x-rsgo") {
			fail(0, "", "", "not valid YAML: %v", err)
			return p, true, errs
		}
		return p, false, nil
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return p, false, nil
	}
	root := doc.Content[0]
	metaNode := mapValue(root, "x-rsgo")
	if metaNode == nil {
		return p, false, nil
	}
	if err := metaNode.Decode(&p.meta); err != nil {
		fail(metaNode.Line, "", "x-rsgo", "%v", err)
		return p, true, errs
	}
	checkKeys(metaNode, []string{"product", "name", "version", "stack", "description", "variables"}, func(k *yaml.Node) {
		fail(k.Line, "", "x-rsgo."+k.Value, "unknown x-rsgo key")
	})
	m := &p.meta
	if m.Stack == "" {
		m.Stack = "main"
	}
	switch {
	case m.Product == "":
		fail(metaNode.Line, "", "x-rsgo.product", "product is required")
	case !idPattern.MatchString(m.Product):
		fail(metaNode.Line, "", "x-rsgo.product", "product %q must be lowercase letters, digits, '.', '_' or '-'", m.Product)
	}
	if !idPattern.MatchString(m.Stack) {
		fail(metaNode.Line, "", "x-rsgo.stack", "stack %q must be lowercase letters, digits, '.', '_' or '-'", m.Stack)
	}
	if m.Name == "" {
		m.Name = m.Product
	}
	if m.Version == "" {
		fail(metaNode.Line, "", "x-rsgo.version", "version is required")
	} else if v, err := semver.StrictNewVersion(m.Version); err != nil {
		fail(metaNode.Line, "", "x-rsgo.version", "version %q is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE]): %v", m.Version, err)
	} else {
		p.version = v
	}
	var declared []string
	p.variables, declared = parseVariables(m.Variables, fail)

	checkKeys(root, topLevelKeys, func(k *yaml.Node) {
		if msg, known := explainedRejected[k.Value]; known {
			fail(k.Line, "", k.Value, "%s", msg)
			return
		}
		fail(k.Line, "", k.Value, "top-level key is not supported by rsgo")
	})
	services := mapValue(root, "services")
	if services == nil || services.Kind != yaml.MappingNode || len(services.Content) == 0 {
		fail(root.Line, "", "services", "a stack version needs at least one service")
		return p, true, errs
	}
	for i := 0; i+1 < len(services.Content); i += 2 {
		name, svc := services.Content[i].Value, services.Content[i+1]
		p.services = append(p.services, name)
		checkService(name, svc, fail)
	}
	checkResources(mapValue(root, "networks"), "networks", networkKeys, fail)
	checkResources(mapValue(root, "volumes"), "volumes", volumeKeys, fail)
	checkReferences(content, declared, fail)
	return p, true, errs
}

type failFunc func(line int, service, key, format string, a ...any)

// parseVariables returns the valid declarations and the names of all
// declared ones, so a broken declaration is reported once and not again at
// every ${NAME} that uses it.
func parseVariables(node yaml.Node, fail failFunc) (out []Variable, names []string) {
	if node.Kind == 0 {
		return nil, nil
	}
	if node.Kind != yaml.MappingNode {
		fail(node.Line, "", "x-rsgo.variables", "variables must be a mapping of NAME: {type: ...}")
		return nil, nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		name, body := node.Content[i], node.Content[i+1]
		names = append(names, name.Value)
		key := "x-rsgo.variables." + name.Value
		var d varDecl
		if err := body.Decode(&d); err != nil {
			fail(body.Line, "", key, "%v", err)
			continue
		}
		checkKeys(body, []string{"type", "label", "description", "default", "required", "pattern", "min", "max", "options"}, func(k *yaml.Node) {
			fail(k.Line, "", key+"."+k.Value, "unknown variable attribute")
		})
		v := Variable{Name: name.Value, Type: d.Type, Label: d.Label, Description: d.Description, Required: d.Required,
			Pattern: d.Pattern, Min: d.Min, Max: d.Max, Options: d.Options}
		if v.Type == "" {
			v.Type = TypeString
		}
		if d.Default.Kind == yaml.ScalarNode {
			s := d.Default.Value
			v.Default = &s
		}
		if msg := v.check(); msg != "" {
			fail(body.Line, "", key, "%s", msg)
			continue
		}
		out = append(out, v)
	}
	return out, names
}

func checkService(name string, svc *yaml.Node, fail failFunc) {
	if svc.Kind != yaml.MappingNode {
		fail(svc.Line, name, "", "service must be a mapping")
		return
	}
	checkKeys(svc, serviceKeys, func(k *yaml.Node) {
		if msg, known := explainedRejected[k.Value]; known {
			fail(k.Line, name, k.Value, "%s", msg)
			return
		}
		fail(k.Line, name, k.Value, "key is not supported by rsgo (supported: %s)", strings.Join(serviceKeys, ", "))
	})
	if img := mapValue(svc, "image"); img == nil || img.Value == "" {
		fail(svc.Line, name, "image", "image is required")
	}
	if hc := mapValue(svc, "healthcheck"); hc != nil {
		checkKeys(hc, healthcheckKeys, func(k *yaml.Node) { fail(k.Line, name, "healthcheck."+k.Value, "key is not supported by rsgo") })
	}
	if pp := mapValue(svc, "pull_policy"); pp != nil && !slices.Contains(pullPolicies, pp.Value) {
		fail(pp.Line, name, "pull_policy", "pull_policy %q is not supported (want always, missing or never)", pp.Value)
	}
	if r := mapValue(svc, "restart"); r != nil && !restartPattern.MatchString(r.Value) {
		fail(r.Line, name, "restart", "restart %q is not supported (want no, always, unless-stopped or on-failure[:N])", r.Value)
	}
	if ports := mapValue(svc, "ports"); ports != nil && ports.Kind == yaml.SequenceNode {
		for _, p := range ports.Content {
			checkKeys(p, portKeys, func(k *yaml.Node) { fail(k.Line, name, "ports."+k.Value, "key is not supported by rsgo") })
		}
	}
	if vols := mapValue(svc, "volumes"); vols != nil && vols.Kind == yaml.SequenceNode {
		for _, v := range vols.Content {
			checkKeys(v, volumeMountKeys, func(k *yaml.Node) { fail(k.Line, name, "volumes."+k.Value, "key is not supported by rsgo") })
			if t := mapValue(v, "type"); t != nil && t.Value != "volume" && t.Value != "bind" {
				fail(t.Line, name, "volumes.type", "volume type %q is not supported (want volume or bind)", t.Value)
			}
		}
	}
	if nets := mapValue(svc, "networks"); nets != nil && nets.Kind == yaml.MappingNode {
		for i := 1; i < len(nets.Content); i += 2 {
			checkKeys(nets.Content[i], serviceNetKeys, func(k *yaml.Node) { fail(k.Line, name, "networks."+k.Value, "key is not supported by rsgo") })
		}
	}
	if deps := mapValue(svc, "depends_on"); deps != nil && deps.Kind == yaml.MappingNode {
		for i := 1; i < len(deps.Content); i += 2 {
			checkKeys(deps.Content[i], dependsOnKeys, func(k *yaml.Node) { fail(k.Line, name, "depends_on."+k.Value, "key is not supported by rsgo") })
		}
	}
}

func checkResources(node *yaml.Node, kind string, allowed []string, fail failFunc) {
	if node == nil || node.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, body := node.Content[i].Value, node.Content[i+1]
		checkKeys(body, allowed, func(k *yaml.Node) {
			fail(k.Line, "", kind+"."+key+"."+k.Value, "key is not supported by rsgo (supported: %s)", strings.Join(allowed, ", "))
		})
	}
}

// checkReferences makes sure every ${VAR} is a declared variable: values
// come from the deployment's variables only, never from anywhere else.
func checkReferences(content []byte, names []string, fail failFunc) {
	declared := map[string]bool{}
	for _, n := range names {
		declared[n] = true
	}
	seen := map[string]bool{}
	for i, line := range strings.Split(string(content), "\n") {
		line = strings.ReplaceAll(line, "$$", "")
		for _, m := range interpolationRef.FindAllStringSubmatch(line, -1) {
			name := m[1] + m[2]
			if !declared[name] && !seen[name] {
				seen[name] = true
				fail(i+1, "", "", "${%s} is not declared in x-rsgo.variables", name)
			}
		}
	}
}

// checkKeys calls bad for every key of a mapping node that is not allowed;
// extension keys (x-...) are always allowed.
func checkKeys(node *yaml.Node, allowed []string, bad func(k *yaml.Node)) {
	if node == nil || node.Kind != yaml.MappingNode {
		return
	}
	var rejected []*yaml.Node
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := node.Content[i]
		if strings.HasPrefix(k.Value, "x-") || slices.Contains(allowed, k.Value) {
			continue
		}
		rejected = append(rejected, k)
	}
	sort.SliceStable(rejected, func(i, j int) bool { return rejected[i].Line < rejected[j].Line })
	for _, k := range rejected {
		bad(k)
	}
}

func mapValue(node *yaml.Node, key string) *yaml.Node {
	if node == nil || node.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return node.Content[i+1]
		}
	}
	return nil
}
