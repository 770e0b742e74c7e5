package engine

import (
	"context"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/rsgo/rsgo/shared/stack"
)

// pullConcurrency bounds parallel pulls; the engine serializes layer
// downloads per registry anyway.
const pullConcurrency = 3

// PullAll makes every image of spec present according to its pull policy,
// in parallel. Nothing is created before all images are there, so a pull
// failure leaves no container behind.
func (e *Engine) PullAll(ctx context.Context, spec stack.Spec, progress func(service string, done, total int)) error {
	type job struct{ image, policy, service string }
	seen := map[string]bool{}
	var jobs []job
	for _, s := range spec.Services {
		if seen[s.Image] {
			continue
		}
		seen[s.Image] = true
		jobs = append(jobs, job{s.Image, s.PullPolicy, s.Name})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pullConcurrency)
	done := make(chan string, len(jobs))
	for _, j := range jobs {
		g.Go(func() error {
			if err := e.ensureImage(gctx, j.image, j.policy); err != nil {
				return &ServiceError{Service: j.service, Err: err}
			}
			done <- j.service
			return nil
		})
	}
	errc := make(chan error, 1)
	go func() { errc <- g.Wait(); close(done) }()
	n := 0
	for svc := range done {
		n++
		if progress != nil {
			progress(svc, n, len(jobs))
		}
	}
	return <-errc
}

func (e *Engine) ensureImage(ctx context.Context, image, policy string) error {
	if policy != stack.PullAlways {
		_, err := e.cli.ImageInspect(ctx, image)
		switch {
		case err == nil:
			return nil
		case !cerrdefs.IsNotFound(err):
			return fmt.Errorf("inspect image %s: %w", image, err)
		case policy == stack.PullNever:
			return fmt.Errorf("image %s is not present and pull_policy is never", image)
		}
	}
	return e.pull(ctx, image)
}

func (e *Engine) pull(ctx context.Context, image string) error {
	resp, err := e.cli.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", image, cleanErr(err))
	}
	defer resp.Close()
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("pull %s: %w", image, err)
		}
		if msg.Error != nil {
			return fmt.Errorf("pull %s: %s", image, msg.Error.Message)
		}
	}
	return nil
}

// cleanErr drops the engine's "Error response from daemon: " prefix, which
// says nothing to an operator reading rsgo's message.
func cleanErr(err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "Error response from daemon: "); ok {
		return fmt.Errorf("%s", rest)
	}
	return err
}
