package daemon

import (
	"encoding/json"

	"github.com/rsgo/rsgo/controller/internal/gateway"
	"github.com/rsgo/rsgo/controller/internal/hub"
	"github.com/rsgo/rsgo/controller/internal/ops"
	"github.com/rsgo/rsgo/shared/protocol"
)

// observers fans session events out to several observers in order.
type observers []gateway.Observer

func (o observers) AgentConnected(s *gateway.Session) {
	for _, x := range o {
		x.AgentConnected(s)
	}
}

func (o observers) AgentDisconnected(s *gateway.Session) {
	for _, x := range o {
		x.AgentDisconnected(s)
	}
}

// reconciler compares records with what runs whenever an agent connects.
// It holds a pointer because ops is built after the gateway it observes.
type reconciler struct{ ops **ops.Service }

func (r reconciler) AgentConnected(s *gateway.Session) {
	if *r.ops != nil {
		(*r.ops).Reconcile(s.EnvironmentID)
	}
}

func (reconciler) AgentDisconnected(*gateway.Session) {}

// envEvents tells environment subscribers when an agent comes and goes.
type envEvents struct{ hub *hub.Hub }

func (e envEvents) AgentConnected(s *gateway.Session) {
	e.hub.Status(protocol.Event{Type: protocol.EventEnvironment, EnvironmentID: s.EnvironmentID, Status: "online"})
}

func (e envEvents) AgentDisconnected(s *gateway.Session) {
	e.hub.Status(protocol.Event{Type: protocol.EventEnvironment, EnvironmentID: s.EnvironmentID, Status: "offline"})
}

// handleAgent answers the requests agents send.
func handleAgent(o *ops.Service, h *hub.Hub, s *gateway.Session, req protocol.Request) (any, error) {
	switch req.Type {
	case protocol.TypeOpEvents:
		var body protocol.OpEvents
		if err := json.Unmarshal(req.Body, &body); err != nil {
			return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: "op.events: " + err.Error()}
		}
		return h.Ingest(s.EnvironmentID, body.Events)
	case protocol.TypeOpResult:
		var res protocol.OpResult
		if err := json.Unmarshal(req.Body, &res); err != nil {
			return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: "op.result: " + err.Error()}
		}
		if o == nil {
			return nil, &protocol.Error{Code: protocol.CodeInternal, Message: "controller is starting"}
		}
		return struct{}{}, o.ApplyResult(s.EnvironmentID, res)
	}
	return nil, &protocol.Error{Code: protocol.CodeUnknownType, Message: "controller does not know request type " + req.Type}
}
