package protocol

import (
	"encoding/json"
	"fmt"
	"time"
)

// Hello is the first frame the agent sends after the TLS handshake on an
// ALPNLink connection, before yamux starts.
type Hello struct {
	ProtocolVersion int    `json:"protocolVersion"`
	MinVersion      int    `json:"minVersion"`
	AgentVersion    string `json:"agentVersion"`
	Hostname        string `json:"hostname"`
	DockerVersion   string `json:"dockerVersion,omitempty"`
	// DockerError says why the engine could not be asked, if it could not.
	DockerError string `json:"dockerError,omitempty"`
	OS          string `json:"os,omitempty"`
	Arch        string `json:"arch,omitempty"`
}

// HelloAck is the controller's answer to Hello. When Error is set the
// controller closes the connection after sending it.
type HelloAck struct {
	ProtocolVersion int    `json:"protocolVersion"`
	EnvironmentID   string `json:"environmentId,omitempty"`
	EnvironmentName string `json:"environmentName,omitempty"`
	Error           *Error `json:"error,omitempty"`
}

// Negotiate picks the protocol version both sides speak: the highest version
// in the overlap of [MinVersion, Version] and [h.MinVersion, h.ProtocolVersion].
func Negotiate(h Hello) (int, error) {
	peerMin := h.MinVersion
	if peerMin == 0 {
		peerMin = h.ProtocolVersion
	}
	v := min(Version, h.ProtocolVersion)
	if v < MinVersion || v < peerMin {
		return 0, &Error{Code: CodeUnsupportedVersion, Message: fmt.Sprintf(
			"agent speaks protocol %d..%d, controller %d..%d", peerMin, h.ProtocolVersion, MinVersion, Version)}
	}
	return v, nil
}

// Request types the controller sends to an agent.
const (
	TypePing       = "ping"
	TypeDockerInfo = "docker.info"
)

// Request opens every stream: one request, one response, then the stream closes.
type Request struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

// Response answers a Request on the same stream.
type Response struct {
	Error *Error          `json:"error,omitempty"`
	Body  json.RawMessage `json:"body,omitempty"`
}

// PingResult answers TypePing.
type PingResult struct {
	AgentTime time.Time `json:"agentTime"`
}

// DockerInfo answers TypeDockerInfo.
type DockerInfo struct {
	ServerVersion   string `json:"serverVersion"`
	APIVersion      string `json:"apiVersion"`
	OS              string `json:"os"`
	Arch            string `json:"arch"`
	KernelVersion   string `json:"kernelVersion,omitempty"`
	OperatingSystem string `json:"operatingSystem,omitempty"`
	Containers      int    `json:"containers"`
	Images          int    `json:"images"`
	NCPU            int    `json:"ncpu"`
	MemTotal        int64  `json:"memTotal"`
}

// EnrollRequest is the single frame an agent sends on an ALPNEnroll connection.
type EnrollRequest struct {
	Token string `json:"token"`
	// CSR is a PEM-encoded PKCS#10 request for the agent's own key.
	CSR      string `json:"csr"`
	Hostname string `json:"hostname,omitempty"`
}

// EnrollResponse answers EnrollRequest.
type EnrollResponse struct {
	Error *Error `json:"error,omitempty"`
	// Certificate is the PEM-encoded agent certificate.
	Certificate string `json:"certificate,omitempty"`
	// CA is the PEM-encoded CA certificate the agent pins from now on.
	CA              string `json:"ca,omitempty"`
	EnvironmentID   string `json:"environmentId,omitempty"`
	EnvironmentName string `json:"environmentName,omitempty"`
}
