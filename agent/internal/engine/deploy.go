package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/rsgo/rsgo/shared/protocol"
	"github.com/rsgo/rsgo/shared/stack"
)

// DefaultHealthTimeout bounds how long a service may take to turn healthy.
const DefaultHealthTimeout = 60 * time.Second

// stableFor is how long a container without a healthcheck must keep
// running before it counts as up: long enough to catch one that dies at once.
const stableFor = 500 * time.Millisecond

// ServiceError says which service failed and why.
type ServiceError struct {
	Service string
	Err     error
}

func (e *ServiceError) Error() string { return "service " + e.Service + ": " + e.Err.Error() }
func (e *ServiceError) Unwrap() error { return e.Err }

// Hooks report progress of Up and Verify; every field may be nil.
type Hooks struct {
	Started  func(service string, done, total int)
	Verified func(service string, done, total int)
}

// Up creates the stack's networks and volumes and creates and starts every
// service, each as soon as what it depends on is ready, so independent
// services start in parallel. Containers of the deployment that already
// exist are replaced.
func (e *Engine) Up(ctx context.Context, spec stack.Spec, operationID string, hooks Hooks) error {
	if err := e.ensureNetworks(ctx, spec); err != nil {
		return err
	}
	if err := e.ensureVolumes(ctx, spec); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ready := map[string]chan struct{}{}
	for _, s := range spec.Services {
		ready[s.Name] = make(chan struct{})
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		started  int
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel(err)
	}
	for _, svc := range spec.Services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, dep := range svc.DependsOn {
				select {
				case <-ready[dep.Service]:
				case <-ctx.Done():
					return
				}
			}
			id, err := e.replaceContainer(ctx, spec, svc, operationID)
			if err != nil {
				fail(&ServiceError{Service: svc.Name, Err: err})
				return
			}
			mu.Lock()
			started++
			n := started
			mu.Unlock()
			if hooks.Started != nil {
				hooks.Started(svc.Name, n, len(spec.Services))
			}
			// Dependents wait for the condition they asked for; the
			// strictest one decides when this service counts as ready.
			if err := e.waitCondition(ctx, id, svc, strictestCondition(spec, svc.Name)); err != nil {
				fail(&ServiceError{Service: svc.Name, Err: err})
				return
			}
			close(ready[svc.Name])
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return context.Cause(ctx)
}

// strictestCondition is the strongest depends_on condition any service
// places on name.
func strictestCondition(spec stack.Spec, name string) string {
	cond := stack.ConditionStarted
	for _, s := range spec.Services {
		for _, d := range s.DependsOn {
			if d.Service != name {
				continue
			}
			if d.Condition == stack.ConditionHealthy || d.Condition == stack.ConditionCompleted {
				cond = d.Condition
			}
		}
	}
	return cond
}

func (e *Engine) waitCondition(ctx context.Context, id string, svc stack.Service, cond string) error {
	switch cond {
	case stack.ConditionHealthy:
		if svc.Healthcheck == nil {
			return errors.New("a dependent waits for service_healthy but the service has no healthcheck")
		}
		return e.waitUp(ctx, id, svc, e.healthTimeout)
	case stack.ConditionCompleted:
		res := e.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		select {
		case r := <-res.Result:
			if r.StatusCode != 0 {
				return fmt.Errorf("exited with code %d; dependents need it to complete successfully", r.StatusCode)
			}
			return nil
		case err := <-res.Error:
			return fmt.Errorf("wait for completion: %w", err)
		}
	}
	return nil
}

// Verify waits until every service runs (and is healthy where it has a
// healthcheck), or reports the first service that does not.
func (e *Engine) Verify(ctx context.Context, spec stack.Spec, hooks Hooks) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	verified := 0
	errs := make([]error, len(spec.Services))
	for i, svc := range spec.Services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.waitUp(ctx, spec.ContainerName(svc.Name), svc, e.healthTimeout); err != nil {
				errs[i] = &ServiceError{Service: svc.Name, Err: err}
				return
			}
			mu.Lock()
			verified++
			n := verified
			mu.Unlock()
			if hooks.Verified != nil {
				hooks.Verified(svc.Name, n, len(spec.Services))
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// waitUp polls a container until it is healthy (with a healthcheck) or has
// been running for stableFor (without), and fails as soon as it exits,
// restarts or turns unhealthy.
func (e *Engine) waitUp(ctx context.Context, id string, svc stack.Service, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		res, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect container: %w", cleanErr(err))
		}
		st := res.Container.State
		switch {
		case st == nil:
			return errors.New("container has no state")
		case st.Status == container.StateExited || st.Status == container.StateDead:
			return fmt.Errorf("container exited with code %d%s", st.ExitCode, e.logTail(ctx, id))
		case st.Restarting:
			return fmt.Errorf("container keeps restarting (last exit code %d)%s", st.ExitCode, e.logTail(ctx, id))
		case st.Running && st.Health != nil && st.Health.Status == container.Unhealthy:
			return fmt.Errorf("container is unhealthy: %s", lastHealthOutput(st.Health))
		case st.Running && svc.Healthcheck != nil && st.Health != nil && st.Health.Status == container.Healthy:
			return nil
		case st.Running && svc.Healthcheck == nil:
			startedAt, _ := time.Parse(time.RFC3339Nano, st.StartedAt)
			if time.Since(startedAt) >= stableFor {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if svc.Healthcheck != nil {
				return fmt.Errorf("not healthy within %v: %s", timeout, lastHealthOutput(st.Health))
			}
			return fmt.Errorf("not running within %v (state %s)", timeout, st.Status)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func lastHealthOutput(h *container.Health) string {
	if h == nil || len(h.Log) == 0 {
		return "no health check result yet"
	}
	last := h.Log[len(h.Log)-1]
	out := strings.TrimSpace(last.Output)
	if out == "" {
		out = "(no output)"
	}
	return fmt.Sprintf("last check exited %d: %s", last.ExitCode, out)
}

// logTail returns the last lines a failed container printed, for the error.
func (e *Engine) logTail(ctx context.Context, id string) string {
	out, err := e.Logs(ctx, id, 5)
	if err != nil || out == "" {
		return ""
	}
	return "; last output: " + out
}

// replaceContainer creates the service's new container next to the old
// one, and only then stops and removes the old one, renames the new one
// and starts it: creating is off the service's downtime.
func (e *Engine) replaceContainer(ctx context.Context, spec stack.Spec, svc stack.Service, operationID string) (_ string, err error) {
	name := spec.ContainerName(svc.Name)
	if _, err := e.owned(ctx, name, spec.DeploymentID); err != nil {
		return "", err
	}
	suffix := operationID
	if len(suffix) > 12 {
		suffix = suffix[len(suffix)-12:]
	}
	tmpName := name + "-next-" + suffix
	if err := e.removeOwned(ctx, tmpName, spec.DeploymentID, false); err != nil {
		return "", err
	}
	cfg, host, netCfg, extra := containerConfig(spec, svc, operationID)
	created, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: tmpName, Config: cfg, HostConfig: host, NetworkingConfig: netCfg,
	})
	if err != nil {
		return "", fmt.Errorf("create container: %w", cleanErr(err))
	}
	defer func() {
		// A new container that never took over leaves no trace.
		if err != nil {
			e.cli.ContainerRemove(context.WithoutCancel(ctx), created.ID, client.ContainerRemoveOptions{Force: true})
		}
	}()
	for _, n := range extra {
		if _, err := e.cli.NetworkConnect(ctx, spec.NetworkName(n.Key), client.NetworkConnectOptions{
			Container:      created.ID,
			EndpointConfig: &network.EndpointSettings{Aliases: append([]string{svc.Name}, n.Aliases...)},
		}); err != nil {
			return "", fmt.Errorf("connect to network %s: %w", n.Key, cleanErr(err))
		}
	}
	if err := e.removeOwned(ctx, name, spec.DeploymentID, true); err != nil {
		return "", err
	}
	if _, err := e.cli.ContainerRename(ctx, created.ID, client.ContainerRenameOptions{NewName: name}); err != nil {
		return "", fmt.Errorf("rename container: %w", cleanErr(err))
	}
	if _, err := e.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return "", fmt.Errorf("start container: %w", cleanErr(err))
	}
	return created.ID, nil
}

// owned returns the id of the deployment's container of this name, or ""
// when there is none; a container of that name that the deployment does
// not own is an error, so rsgo never touches it.
func (e *Engine) owned(ctx context.Context, name, deploymentID string) (string, error) {
	res, err := e.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", name, cleanErr(err))
	}
	if res.Container.Config == nil || res.Container.Config.Labels[stack.LabelDeployment] != deploymentID {
		return "", fmt.Errorf("a container named %s exists and is not managed by this deployment; rename or remove it", name)
	}
	return res.Container.ID, nil
}

// removeOwned removes the deployment's container of this name, if any;
// graceful stops it first (SIGTERM, then SIGKILL after stopTimeout).
func (e *Engine) removeOwned(ctx context.Context, name, deploymentID string, graceful bool) error {
	id, err := e.owned(ctx, name, deploymentID)
	if err != nil || id == "" {
		return err
	}
	if graceful {
		timeout := stopTimeout
		if _, err := e.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("stop old container %s: %w", name, cleanErr(err))
		}
	}
	if _, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove old container %s: %w", name, cleanErr(err))
	}
	return nil
}

// labels are the rsgo labels of every object of a deployment.
func labels(spec stack.Spec, extra map[string]string) map[string]string {
	l := map[string]string{
		stack.LabelManaged:    "true",
		stack.LabelDeployment: spec.DeploymentID,
		stack.LabelName:       spec.Name,
		stack.LabelStack:      spec.StackID,
		stack.LabelVersion:    spec.Version,
	}
	for k, v := range extra {
		l[k] = v
	}
	return l
}

func containerConfig(spec stack.Spec, svc stack.Service, operationID string) (*container.Config, *container.HostConfig, *network.NetworkingConfig, []stack.ServiceNetwork) {
	raw, _ := json.Marshal(svc)
	sum := sha256.Sum256(raw)
	l := map[string]string{}
	for k, v := range svc.Labels {
		l[k] = v
	}
	l[stack.LabelService] = svc.Name
	l[stack.LabelOperation] = operationID
	l[stack.LabelSpecHash] = hex.EncodeToString(sum[:8])

	env := make([]string, 0, len(svc.Env))
	for k, v := range svc.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	cfg := &container.Config{
		Image:      svc.Image,
		Env:        env,
		Cmd:        svc.Command,
		Entrypoint: svc.Entrypoint,
		User:       svc.User,
		WorkingDir: svc.WorkingDir,
		Labels:     labels(spec, l),
		Hostname:   svc.Name,
	}
	if hc := svc.Healthcheck; hc != nil {
		cfg.Healthcheck = &container.HealthConfig{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout, Retries: hc.Retries, StartPeriod: hc.StartPeriod}
	}
	host := &container.HostConfig{RestartPolicy: restartPolicy(svc.Restart)}
	if len(svc.Ports) > 0 {
		cfg.ExposedPorts = network.PortSet{}
		host.PortBindings = network.PortMap{}
		for _, p := range svc.Ports {
			port, err := network.ParsePort(strconv.Itoa(int(p.ContainerPort)) + "/" + p.Protocol)
			if err != nil {
				continue // the catalog validated ports; nothing to bind
			}
			cfg.ExposedPorts[port] = struct{}{}
			b := network.PortBinding{}
			if p.HostPort != 0 {
				b.HostPort = strconv.Itoa(int(p.HostPort))
			}
			if addr, err := netip.ParseAddr(p.HostIP); err == nil {
				b.HostIP = addr
			}
			host.PortBindings[port] = append(host.PortBindings[port], b)
		}
	}
	for _, m := range svc.Mounts {
		mt := mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		if m.Type == "volume" {
			mt.Type, mt.Source = mount.TypeVolume, spec.VolumeName(m.Source)
		}
		host.Mounts = append(host.Mounts, mt)
	}
	nets := slices.Clone(svc.Networks)
	if len(nets) == 0 {
		nets = []stack.ServiceNetwork{{Key: "default"}}
	}
	first := nets[0]
	host.NetworkMode = container.NetworkMode(spec.NetworkName(first.Key))
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		spec.NetworkName(first.Key): {Aliases: append([]string{svc.Name}, first.Aliases...)},
	}}
	return cfg, host, netCfg, nets[1:]
}

func restartPolicy(s string) container.RestartPolicy {
	name, count, _ := strings.Cut(s, ":")
	switch name {
	case "always":
		return container.RestartPolicy{Name: container.RestartPolicyAlways}
	case "unless-stopped":
		return container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
	case "on-failure":
		n, _ := strconv.Atoi(count)
		return container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: n}
	}
	return container.RestartPolicy{Name: container.RestartPolicyDisabled}
}

func (e *Engine) ensureNetworks(ctx context.Context, spec stack.Spec) error {
	for _, n := range spec.Networks {
		name := spec.NetworkName(n.Key)
		res, err := e.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
		if err == nil {
			if res.Network.Labels[stack.LabelDeployment] != spec.DeploymentID {
				return fmt.Errorf("network %s exists and is not managed by this deployment", name)
			}
			continue
		}
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("inspect network %s: %w", name, cleanErr(err))
		}
		driver := n.Driver
		if driver == "" {
			driver = "bridge"
		}
		if _, err := e.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
			Driver: driver, Internal: n.Internal, Labels: labels(spec, mergeLabels(n.Labels, stack.LabelNetwork, n.Key)),
		}); err != nil {
			return fmt.Errorf("create network %s: %w", name, cleanErr(err))
		}
	}
	return nil
}

func (e *Engine) ensureVolumes(ctx context.Context, spec stack.Spec) error {
	for _, v := range spec.Volumes {
		name := spec.VolumeName(v.Key)
		if _, err := e.cli.VolumeCreate(ctx, client.VolumeCreateOptions{
			Name: name, Driver: v.Driver, Labels: labels(spec, mergeLabels(v.Labels, stack.LabelVolume, v.Key)),
		}); err != nil {
			return fmt.Errorf("create volume %s: %w", name, cleanErr(err))
		}
	}
	return nil
}

func mergeLabels(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range m {
		out[a] = b
	}
	return out
}

// Services reports what runs for each service of spec, with image digests.
func (e *Engine) Services(ctx context.Context, spec stack.Spec) ([]protocol.ServiceStatus, error) {
	out := make([]protocol.ServiceStatus, 0, len(spec.Services))
	for _, svc := range spec.Services {
		st, err := e.serviceStatus(ctx, spec.ContainerName(svc.Name))
		if err != nil {
			return nil, err
		}
		st.Name = svc.Name
		out = append(out, st)
	}
	return out, nil
}

func (e *Engine) serviceStatus(ctx context.Context, id string) (protocol.ServiceStatus, error) {
	res, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return protocol.ServiceStatus{State: "missing"}, nil
	}
	if err != nil {
		return protocol.ServiceStatus{}, fmt.Errorf("inspect %s: %w", id, cleanErr(err))
	}
	c := res.Container
	st := protocol.ServiceStatus{ContainerID: c.ID, ImageID: c.Image}
	if c.Config != nil {
		st.Image = c.Config.Image
		st.Version = c.Config.Labels[stack.LabelVersion]
		st.Name = c.Config.Labels[stack.LabelService]
	}
	if c.State != nil {
		st.State = string(c.State.Status)
		st.ExitCode = c.State.ExitCode
		if c.State.Health != nil {
			st.Health = string(c.State.Health.Status)
		}
	}
	st.Digest = e.repoDigest(ctx, c.Image, st.Image)
	return st, nil
}

// repoDigest finds the registry digest of an image for the repository it
// was referenced by.
func (e *Engine) repoDigest(ctx context.Context, imageID, ref string) string {
	img, err := e.cli.ImageInspect(ctx, imageID)
	if err != nil || len(img.RepoDigests) == 0 {
		return ""
	}
	repo := ref
	if i := strings.LastIndex(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	for _, d := range img.RepoDigests {
		if strings.HasPrefix(d, repo+"@") {
			return d
		}
	}
	// A loaded or locally built image has no registry digest for this
	// repository; its image id identifies it.
	return ""
}
