package catalog

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/rsgo/rsgo/shared/stack"
)

// load runs compose-go over the file with exactly the given variables as
// its environment: interpolation sees nothing of the controller's own
// environment.
func load(ctx context.Context, file string, content []byte, project string, values map[string]string) (*types.Project, error) {
	env := types.Mapping{}
	for k, v := range values {
		env[k] = v
	}
	return loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  filepath.Dir(file),
		ConfigFiles: []types.ConfigFile{{Filename: file, Content: content}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SetProjectName(project, true)
		o.SkipInclude = true
		o.SkipExtends = true
		// Relative bind sources are rejected, not resolved against the
		// controller's directory: they mean nothing on the agent's host.
		o.ResolvePaths = false
		o.ResourceLoaders = nil
	})
}

// toSpec converts a loaded Compose project into the wire spec, with
// services in dependency order.
func toSpec(p *types.Project, sv *Version, deploymentID, name string) (stack.Spec, error) {
	spec := stack.Spec{DeploymentID: deploymentID, Name: name, StackID: sv.StackID, Version: sv.Version}
	order, err := dependencyOrder(p)
	if err != nil {
		return stack.Spec{}, err
	}
	usedNets := map[string]bool{}
	for _, svcName := range order {
		s := p.Services[svcName]
		out := stack.Service{
			Name:       svcName,
			Image:      s.Image,
			PullPolicy: pullPolicy(s.PullPolicy, s.Image),
			Command:    s.Command,
			Entrypoint: s.Entrypoint,
			Restart:    s.Restart,
			User:       s.User,
			WorkingDir: s.WorkingDir,
		}
		if len(s.Environment) > 0 {
			out.Env = map[string]string{}
			for k, v := range s.Environment {
				if v != nil {
					out.Env[k] = *v
				}
			}
		}
		if len(s.Labels) > 0 {
			out.Labels = map[string]string{}
			for k, v := range s.Labels {
				if strings.HasPrefix(k, "io.rsgo.") {
					return stack.Spec{}, fmt.Errorf("service %q: label %q: the io.rsgo. prefix is reserved", svcName, k)
				}
				out.Labels[k] = v
			}
		}
		for _, port := range s.Ports {
			converted, err := convertPort(port)
			if err != nil {
				return stack.Spec{}, fmt.Errorf("service %q: ports: %w", svcName, err)
			}
			out.Ports = append(out.Ports, converted...)
		}
		for _, v := range s.Volumes {
			m := stack.Mount{Type: v.Type, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
			switch {
			case v.Type == types.VolumeTypeBind && !filepath.IsAbs(v.Source):
				return stack.Spec{}, fmt.Errorf("service %q: volumes: bind source %q must be an absolute path on the host", svcName, v.Source)
			case v.Type == types.VolumeTypeVolume && v.Source == "":
				return stack.Spec{}, fmt.Errorf("service %q: volumes: anonymous volumes are not supported; name the volume", svcName)
			case v.Type != types.VolumeTypeBind && v.Type != types.VolumeTypeVolume:
				return stack.Spec{}, fmt.Errorf("service %q: volumes: type %q is not supported", svcName, v.Type)
			}
			out.Mounts = append(out.Mounts, m)
		}
		netKeys := slices.Sorted(maps.Keys(s.Networks))
		if len(netKeys) == 0 {
			netKeys = []string{"default"}
		}
		for _, key := range netKeys {
			sn := stack.ServiceNetwork{Key: key}
			if cfg := s.Networks[key]; cfg != nil {
				sn.Aliases = cfg.Aliases
			}
			usedNets[key] = true
			out.Networks = append(out.Networks, sn)
		}
		for _, dep := range slices.Sorted(maps.Keys(s.DependsOn)) {
			cond := s.DependsOn[dep].Condition
			if cond == "" {
				cond = stack.ConditionStarted
			}
			out.DependsOn = append(out.DependsOn, stack.Dependency{Service: dep, Condition: cond})
		}
		if hc := s.HealthCheck; hc != nil && !hc.Disable && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
			h := &stack.Healthcheck{Test: hc.Test}
			if hc.Interval != nil {
				h.Interval = time.Duration(*hc.Interval)
			}
			if hc.Timeout != nil {
				h.Timeout = time.Duration(*hc.Timeout)
			}
			if hc.StartPeriod != nil {
				h.StartPeriod = time.Duration(*hc.StartPeriod)
			}
			if hc.Retries != nil {
				h.Retries = int(*hc.Retries)
			}
			out.Healthcheck = h
		}
		spec.Services = append(spec.Services, out)
	}
	for _, key := range slices.Sorted(maps.Keys(p.Networks)) {
		n := p.Networks[key]
		if !usedNets[key] && key != "default" {
			continue
		}
		spec.Networks = append(spec.Networks, stack.Network{Key: key, Driver: n.Driver, Internal: n.Internal, Labels: n.Labels})
	}
	if usedNets["default"] && !slices.ContainsFunc(spec.Networks, func(n stack.Network) bool { return n.Key == "default" }) {
		spec.Networks = append([]stack.Network{{Key: "default"}}, spec.Networks...)
	}
	for _, key := range slices.Sorted(maps.Keys(p.Volumes)) {
		v := p.Volumes[key]
		spec.Volumes = append(spec.Volumes, stack.Volume{Key: key, Driver: v.Driver, Labels: v.Labels})
	}
	return spec, nil
}

// pullPolicy applies rsgo's default: always for tags, missing for digests.
func pullPolicy(p, image string) string {
	switch p {
	case types.PullPolicyAlways:
		return stack.PullAlways
	case types.PullPolicyMissing, types.PullPolicyIfNotPresent:
		return stack.PullMissing
	case types.PullPolicyNever:
		return stack.PullNever
	}
	if strings.Contains(image, "@sha256:") {
		return stack.PullMissing
	}
	return stack.PullAlways
}

func convertPort(p types.ServicePortConfig) ([]stack.Port, error) {
	proto := p.Protocol
	if proto == "" {
		proto = "tcp"
	}
	if p.Target == 0 || p.Target > 65535 {
		return nil, fmt.Errorf("container port %d out of range", p.Target)
	}
	if p.Published == "" {
		return []stack.Port{{HostIP: p.HostIP, ContainerPort: uint16(p.Target), Protocol: proto}}, nil
	}
	if strings.Contains(p.Published, "-") {
		return nil, fmt.Errorf("published port range %q is not supported", p.Published)
	}
	hp, err := strconv.Atoi(p.Published)
	if err != nil || hp < 1 || hp > 65535 {
		return nil, fmt.Errorf("published port %q must be 1-65535", p.Published)
	}
	return []stack.Port{{HostIP: p.HostIP, HostPort: uint16(hp), ContainerPort: uint16(p.Target), Protocol: proto}}, nil
}

// dependencyOrder sorts services so that each comes after what it depends
// on; ties break by name so the order is stable.
func dependencyOrder(p *types.Project) ([]string, error) {
	names := slices.Sorted(maps.Keys(p.Services))
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var order []string
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("depends_on cycle: %s", strings.Join(append(path, n), " -> "))
		case 2:
			return nil
		}
		state[n] = 1
		deps := slices.Sorted(maps.Keys(p.Services[n].DependsOn))
		for _, d := range deps {
			if _, ok := p.Services[d]; !ok {
				return fmt.Errorf("service %q depends on unknown service %q", n, d)
			}
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}
