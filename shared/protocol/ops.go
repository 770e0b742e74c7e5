package protocol

import (
	"time"

	"github.com/rsgo/rsgo/shared/stack"
)

// Request types for operations.
const (
	// TypeOpStart (controller → agent) hands the agent an Operation. The
	// agent answers at once with OpAccepted and runs it in the background.
	TypeOpStart = "op.start"
	// TypeOpResult (agent → controller) reports how an operation ended. The
	// agent keeps the result on disk and repeats it until the controller
	// has answered; the controller applies a result once per operation id.
	TypeOpResult = "op.result"
	// TypeInventory (controller → agent) asks for every labelled container.
	TypeInventory = "inventory"
	// TypeOpStatus (controller → agent) asks whether the agent knows an
	// operation: after a controller crash, an operation it recorded may
	// never have reached the agent.
	TypeOpStatus = "op.status"
)

// Operation kinds.
const (
	OpDeploy = "deploy"
	OpStop   = "stop"
	OpStart  = "start"
	OpRemove = "remove"
	// OpUpgrade replaces the deployment's containers with Spec's.
	OpUpgrade = "upgrade"
	// OpRollback removes the deployment's containers and re-creates Spec's,
	// whose images are pinned to the digests that ran before.
	OpRollback = "rollback"
)

// OpStatusRequest asks about one operation.
type OpStatusRequest struct {
	OperationID string `json:"operationId"`
}

// OpStatus answers TypeOpStatus.
type OpStatus struct {
	Known    bool `json:"known"`
	Finished bool `json:"finished"`
}

// Operation is one unit of work on one deployment.
type Operation struct {
	ID           string `json:"id"`
	Kind         string `json:"kind"`
	DeploymentID string `json:"deploymentId"`
	// SessionID groups the operation's events for subscribers.
	SessionID string      `json:"sessionId,omitempty"`
	Spec      *stack.Spec `json:"spec,omitempty"`
	// RemoveVolumes deletes the deployment's named volumes on remove.
	RemoveVolumes bool `json:"removeVolumes,omitempty"`
	// HealthTimeout bounds how long services may take to turn healthy.
	HealthTimeout time.Duration `json:"healthTimeout,omitempty"`
}

// OpAccepted answers TypeOpStart. Duplicate is true when the agent already
// knew the operation id; it then runs nothing new.
type OpAccepted struct {
	Duplicate bool `json:"duplicate,omitempty"`
}

// OpResult is the outcome of an operation.
type OpResult struct {
	OperationID  string          `json:"operationId"`
	DeploymentID string          `json:"deploymentId"`
	Kind         string          `json:"kind"`
	Success      bool            `json:"success"`
	Error        string          `json:"error,omitempty"`
	Phase        string          `json:"phase,omitempty"`
	Services     []ServiceStatus `json:"services,omitempty"`
	FinishedAt   time.Time       `json:"finishedAt"`
}

// ServiceStatus is what runs for one service.
type ServiceStatus struct {
	Name        string `json:"name"`
	ContainerID string `json:"containerId,omitempty"`
	Image       string `json:"image,omitempty"`
	ImageID     string `json:"imageId,omitempty"`
	// Digest is the repository digest of the image, repo@sha256:..., when
	// the image came from a registry.
	Digest   string `json:"digest,omitempty"`
	State    string `json:"state"`
	Health   string `json:"health,omitempty"`
	ExitCode int    `json:"exitCode,omitempty"`
	Version  string `json:"version,omitempty"`
}

// Inventory answers TypeInventory: deployment id → its containers.
type Inventory struct {
	Deployments map[string][]ServiceStatus `json:"deployments"`
}
