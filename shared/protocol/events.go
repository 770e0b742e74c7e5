package protocol

import "time"

// TypeOpEvents (agent → controller) carries progress events of operations,
// oldest first. The controller answers with the highest sequence number it
// holds per operation, and stores an (operationId, opSeq) pair only once.
const TypeOpEvents = "op.events"

// Event types (SPEC §7). The agent sends only EventProgress; the controller
// adds the final EventCompleted or EventFailed when it applies the result,
// and EventEnvironment and EventDeployment for environment subscribers.
const (
	EventProgress    = "progress"
	EventCompleted   = "completed"
	EventFailed      = "failed"
	EventEnvironment = "environment"
	EventDeployment  = "deployment"
)

// Event is one step of an operation, or a status change.
type Event struct {
	Type string `json:"type"`
	// Seq increases per session; the controller assigns it.
	Seq int64 `json:"seq"`
	// OpSeq increases per operation; the agent assigns it.
	OpSeq int64 `json:"opSeq,omitempty"`
	// EnvSeq increases per environment; environment subscribers resume
	// with it.
	EnvSeq        int64  `json:"envSeq,omitempty"`
	SessionID     string `json:"sessionId,omitempty"`
	EnvironmentID string `json:"environmentId,omitempty"`
	DeploymentID  string `json:"deploymentId,omitempty"`
	OperationID   string `json:"operationId,omitempty"`
	Operation     string `json:"operation,omitempty"`

	Phase             string        `json:"phase,omitempty"`
	Message           string        `json:"message,omitempty"`
	Percent           int           `json:"percent"`
	CurrentService    string        `json:"currentService,omitempty"`
	TotalServices     int           `json:"totalServices,omitempty"`
	CompletedServices int           `json:"completedServices"`
	Pull              *PullProgress `json:"pull,omitempty"`

	// Final events.
	Error       string `json:"error,omitempty"`
	CanRollback *bool  `json:"canRollback,omitempty"`

	// Status events.
	Status  string `json:"status,omitempty"`
	Version string `json:"version,omitempty"`

	Time time.Time `json:"time"`
}

// PullProgress is the engine's pull stream for one image, summed over its
// layers.
type PullProgress struct {
	Image          string `json:"image"`
	LayersTotal    int    `json:"layersTotal"`
	LayersDone     int    `json:"layersDone"`
	BytesCurrent   int64  `json:"bytesCurrent"`
	BytesTotal     int64  `json:"bytesTotal"`
	LastStatusLine string `json:"status,omitempty"`
}

// OpEvents is the body of TypeOpEvents.
type OpEvents struct {
	Events []Event `json:"events"`
}

// OpEventsAck answers TypeOpEvents: operation id → highest OpSeq stored.
type OpEventsAck struct {
	Acked map[string]int64 `json:"acked"`
}
