// Package dispatch routes the controller's requests to the code that does
// the work on this host.
package dispatch

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rsgo/rsgo/shared/protocol"
)

// Engine is what dispatch needs of the Docker engine.
type Engine interface {
	Info(ctx context.Context) (protocol.DockerInfo, error)
	Inventory(ctx context.Context) (protocol.Inventory, error)
}

// Runner accepts operations.
type Runner interface {
	Start(op protocol.Operation) (protocol.OpAccepted, error)
	Status(operationID string) protocol.OpStatus
}

// Dispatcher answers requests.
type Dispatcher struct {
	Engine Engine
	Runner Runner
}

// Handle implements protocol.Handler.
func (d *Dispatcher) Handle(ctx context.Context, req protocol.Request) (any, error) {
	switch req.Type {
	case protocol.TypePing:
		return protocol.PingResult{AgentTime: time.Now().UTC()}, nil
	case protocol.TypeDockerInfo:
		info, err := d.Engine.Info(ctx)
		if err != nil {
			return nil, &protocol.Error{Code: protocol.CodeDockerUnavailable, Message: err.Error()}
		}
		return info, nil
	case protocol.TypeInventory:
		inv, err := d.Engine.Inventory(ctx)
		if err != nil {
			return nil, &protocol.Error{Code: protocol.CodeDockerUnavailable, Message: err.Error()}
		}
		return inv, nil
	case protocol.TypeOpStart:
		var op protocol.Operation
		if err := json.Unmarshal(req.Body, &op); err != nil {
			return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: "operation: " + err.Error()}
		}
		return d.Runner.Start(op)
	case protocol.TypeOpStatus:
		var q protocol.OpStatusRequest
		if err := json.Unmarshal(req.Body, &q); err != nil {
			return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: "op.status: " + err.Error()}
		}
		return d.Runner.Status(q.OperationID), nil
	}
	return nil, &protocol.Error{Code: protocol.CodeUnknownType, Message: "agent does not know request type " + req.Type}
}
