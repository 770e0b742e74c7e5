package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rsgo/rsgo/shared/protocol"
	"github.com/rsgo/rsgo/shared/stack"
)

// stopTimeout is how long a container gets to stop before SIGKILL.
const stopTimeout = 10

func deploymentFilter(deploymentID string) client.Filters {
	return client.Filters{}.Add("label", stack.LabelDeployment+"="+deploymentID)
}

// containers lists the deployment's containers, found by label only.
func (e *Engine) containers(ctx context.Context, deploymentID string) ([]container.Summary, error) {
	res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: deploymentFilter(deploymentID)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", cleanErr(err))
	}
	return res.Items, nil
}

// Stop stops every container of the deployment, dependents first.
func (e *Engine) Stop(ctx context.Context, spec stack.Spec) error {
	for i := len(spec.Services) - 1; i >= 0; i-- {
		svc := spec.Services[i]
		timeout := stopTimeout
		_, err := e.cli.ContainerStop(ctx, spec.ContainerName(svc.Name), client.ContainerStopOptions{Timeout: &timeout})
		if err != nil && !cerrdefs.IsNotFound(err) {
			return &ServiceError{Service: svc.Name, Err: fmt.Errorf("stop: %w", cleanErr(err))}
		}
	}
	return nil
}

// Start starts the deployment's existing containers in dependency order.
func (e *Engine) Start(ctx context.Context, spec stack.Spec) error {
	for _, svc := range spec.Services {
		name := spec.ContainerName(svc.Name)
		if _, err := e.cli.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
			if cerrdefs.IsNotFound(err) {
				return &ServiceError{Service: svc.Name, Err: fmt.Errorf("container %s is missing; deploy again", name)}
			}
			return &ServiceError{Service: svc.Name, Err: fmt.Errorf("start: %w", cleanErr(err))}
		}
		if err := e.waitCondition(ctx, name, svc, strictestCondition(spec, svc.Name)); err != nil {
			return &ServiceError{Service: svc.Name, Err: err}
		}
	}
	return nil
}

// RemoveContainers deletes the deployment's containers whose service keep
// does not want kept (nil removes all). Networks and volumes stay.
func (e *Engine) RemoveContainers(ctx context.Context, deploymentID string, keep func(service string) bool) error {
	items, err := e.containers(ctx, deploymentID)
	if err != nil {
		return err
	}
	for _, c := range items {
		if keep != nil && keep(c.Labels[stack.LabelService]) {
			continue
		}
		if _, err := e.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove container %s: %w", strings.Join(c.Names, ","), cleanErr(err))
		}
	}
	return nil
}

// RemoveOrphans deletes containers of services that spec no longer has.
func (e *Engine) RemoveOrphans(ctx context.Context, spec stack.Spec) error {
	wanted := map[string]bool{}
	for _, s := range spec.Services {
		wanted[s.Name] = true
	}
	return e.RemoveContainers(ctx, spec.DeploymentID, func(service string) bool { return wanted[service] })
}

// Remove deletes every container and network of the deployment, and its
// volumes when asked. It finds them by label and touches nothing else.
func (e *Engine) Remove(ctx context.Context, deploymentID string, volumes bool) error {
	if err := e.RemoveContainers(ctx, deploymentID, nil); err != nil {
		return err
	}
	nets, err := e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: deploymentFilter(deploymentID)})
	if err != nil {
		return fmt.Errorf("list networks: %w", cleanErr(err))
	}
	for _, n := range nets.Items {
		if _, err := e.cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove network %s: %w", n.Name, cleanErr(err))
		}
	}
	if !volumes {
		return nil
	}
	vols, err := e.cli.VolumeList(ctx, client.VolumeListOptions{Filters: deploymentFilter(deploymentID)})
	if err != nil {
		return fmt.Errorf("list volumes: %w", cleanErr(err))
	}
	for _, v := range vols.Items {
		if _, err := e.cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove volume %s: %w", v.Name, cleanErr(err))
		}
	}
	return nil
}

// Inventory lists every container rsgo manages on this engine, by deployment.
func (e *Engine) Inventory(ctx context.Context) (protocol.Inventory, error) {
	res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", stack.LabelManaged+"=true")})
	if err != nil {
		return protocol.Inventory{}, fmt.Errorf("list containers: %w", cleanErr(err))
	}
	inv := protocol.Inventory{Deployments: map[string][]protocol.ServiceStatus{}}
	for _, c := range res.Items {
		dep := c.Labels[stack.LabelDeployment]
		if dep == "" {
			continue
		}
		st, err := e.serviceStatus(ctx, c.ID)
		if err != nil {
			return protocol.Inventory{}, err
		}
		inv.Deployments[dep] = append(inv.Deployments[dep], st)
	}
	return inv, nil
}

// Logs returns the last lines a container wrote, stdout and stderr merged.
func (e *Engine) Logs(ctx context.Context, id string, lines int) (string, error) {
	rc, err := e.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(lines)})
	if err != nil {
		return "", cleanErr(err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 64<<10)); err != nil {
		return "", err
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(out.String()), "\n", " | ")), " "), nil
}
