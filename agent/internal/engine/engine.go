// Package engine is the agent's only door to the local Docker engine. It
// knows nothing about the controller.
package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/client"

	"github.com/rsgo/rsgo/shared/protocol"
)

// Engine wraps a Docker client configured from DOCKER_HOST and friends.
type Engine struct {
	cli           *client.Client
	healthTimeout time.Duration
}

// New connects lazily: the first request negotiates the API version. A
// DOCKER_API_VERSION in the environment pins the version instead.
func New() (*Engine, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Engine{cli: cli, healthTimeout: DefaultHealthTimeout}, nil
}

// WithHealthTimeout returns a copy of the engine that waits at most d for
// services to turn healthy.
func (e *Engine) WithHealthTimeout(d time.Duration) *Engine {
	c := *e
	if d > 0 {
		c.healthTimeout = d
	}
	return &c
}

// Close releases the client's connections.
func (e *Engine) Close() error { return e.cli.Close() }

// Version returns the engine's version string.
func (e *Engine) Version(ctx context.Context) (string, error) {
	v, err := e.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("docker version: %w", err)
	}
	return v.Version, nil
}

// Info describes the engine for the controller.
func (e *Engine) Info(ctx context.Context) (protocol.DockerInfo, error) {
	v, err := e.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return protocol.DockerInfo{}, fmt.Errorf("docker version: %w", err)
	}
	res, err := e.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return protocol.DockerInfo{}, fmt.Errorf("docker info: %w", err)
	}
	info := res.Info
	return protocol.DockerInfo{
		ServerVersion:   v.Version,
		APIVersion:      v.APIVersion,
		OS:              v.Os,
		Arch:            v.Arch,
		KernelVersion:   info.KernelVersion,
		OperatingSystem: info.OperatingSystem,
		Containers:      info.Containers,
		Images:          info.Images,
		NCPU:            info.NCPU,
		MemTotal:        info.MemTotal,
	}, nil
}
