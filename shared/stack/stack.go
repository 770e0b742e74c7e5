// Package stack is the resolved form of a stack version that the controller
// sends to an agent: every variable interpolated, every default applied,
// services in dependency order. The agent needs nothing else to create the
// stack's objects on its engine.
package stack

import "time"

// Labels the agent puts on every object it creates and selects by. It
// never touches an object without LabelDeployment.
const (
	LabelDeployment = "io.rsgo.deployment" // deployment id
	LabelName       = "io.rsgo.name"       // deployment name
	LabelService    = "io.rsgo.service"    // service name (containers)
	LabelStack      = "io.rsgo.stack"      // stack id without version
	LabelVersion    = "io.rsgo.version"    // stack version
	LabelOperation  = "io.rsgo.operation"  // operation that created it
	LabelSpecHash   = "io.rsgo.spec-hash"  // hash of the service spec
	LabelManaged    = "io.rsgo.managed"    // "true" on everything rsgo owns
	LabelNetwork    = "io.rsgo.network"    // network key within the stack
	LabelVolume     = "io.rsgo.volume"     // volume key within the stack
)

// Pull policies.
const (
	PullAlways  = "always"
	PullMissing = "missing"
	PullNever   = "never"
)

// Dependency conditions.
const (
	ConditionStarted   = "service_started"
	ConditionHealthy   = "service_healthy"
	ConditionCompleted = "service_completed_successfully"
)

// Spec is one deployment of one stack version.
type Spec struct {
	DeploymentID string `json:"deploymentId"`
	// Name is the deployment name; it prefixes every object name.
	Name     string    `json:"name"`
	StackID  string    `json:"stackId"`
	Version  string    `json:"version"`
	Services []Service `json:"services"`
	Networks []Network `json:"networks"`
	Volumes  []Volume  `json:"volumes,omitempty"`
}

// Service is one container of the stack.
type Service struct {
	Name       string            `json:"name"`
	Image      string            `json:"image"`
	PullPolicy string            `json:"pullPolicy"`
	Command    []string          `json:"command,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Ports      []Port            `json:"ports,omitempty"`
	Mounts     []Mount           `json:"mounts,omitempty"`
	// Networks are keys of Spec.Networks, with the aliases the service has there.
	Networks    []ServiceNetwork  `json:"networks"`
	DependsOn   []Dependency      `json:"dependsOn,omitempty"`
	Healthcheck *Healthcheck      `json:"healthcheck,omitempty"`
	Restart     string            `json:"restart,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	User        string            `json:"user,omitempty"`
	WorkingDir  string            `json:"workingDir,omitempty"`
}

// Port publishes a container port on the host.
type Port struct {
	HostIP        string `json:"hostIp,omitempty"`
	HostPort      uint16 `json:"hostPort,omitempty"`
	ContainerPort uint16 `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

// Mount is a named volume (Source is a key of Spec.Volumes) or a bind mount
// (Source is an absolute host path).
type Mount struct {
	Type     string `json:"type"` // "volume" or "bind"
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// ServiceNetwork attaches a service to a network of the stack.
type ServiceNetwork struct {
	Key     string   `json:"key"`
	Aliases []string `json:"aliases,omitempty"`
}

// Dependency orders service start.
type Dependency struct {
	Service   string `json:"service"`
	Condition string `json:"condition"`
}

// Healthcheck is the container's health test.
type Healthcheck struct {
	Test        []string      `json:"test"`
	Interval    time.Duration `json:"interval,omitempty"`
	Timeout     time.Duration `json:"timeout,omitempty"`
	Retries     int           `json:"retries,omitempty"`
	StartPeriod time.Duration `json:"startPeriod,omitempty"`
}

// Network is a network the stack owns. Key "default" always exists.
type Network struct {
	Key      string            `json:"key"`
	Driver   string            `json:"driver,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// Volume is a named volume the stack owns.
type Volume struct {
	Key    string            `json:"key"`
	Driver string            `json:"driver,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// NetworkName is the engine name of a stack network.
func (s Spec) NetworkName(key string) string { return s.Name + "_" + key }

// VolumeName is the engine name of a stack volume.
func (s Spec) VolumeName(key string) string { return s.Name + "_" + key }

// ContainerName is the engine name of a service's container.
func (s Spec) ContainerName(service string) string { return s.Name + "-" + service }
