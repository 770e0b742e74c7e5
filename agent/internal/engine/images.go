package engine

import (
	"context"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/rsgo/rsgo/shared/protocol"
	"github.com/rsgo/rsgo/shared/stack"
)

// pullConcurrency bounds parallel pulls; the engine serializes layer
// downloads per registry anyway.
const pullConcurrency = 3

// PullAll makes every image of spec present according to its pull policy,
// in parallel. Nothing is created before all images are there, so a pull
// failure leaves no container behind.
func (e *Engine) PullAll(ctx context.Context, spec stack.Spec, hooks PullHooks) error {
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
			if err := e.ensureImage(gctx, j.image, j.policy, hooks.Progress); err != nil {
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
		if hooks.ImageDone != nil {
			hooks.ImageDone(svc, n, len(jobs))
		}
	}
	return <-errc
}

// PullHooks report pull progress; both may be nil.
type PullHooks struct {
	// ImageDone is called when an image is present, with how many are.
	ImageDone func(service string, done, total int)
	// Progress relays the engine's pull stream, summed per image. It is
	// called for every message; callers throttle.
	Progress func(p protocol.PullProgress)
}

func (e *Engine) ensureImage(ctx context.Context, image, policy string, progress func(protocol.PullProgress)) error {
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
	return e.pull(ctx, image, progress)
}

type layerState struct {
	current, total int64
	done           bool
}

func (e *Engine) pull(ctx context.Context, image string, progress func(protocol.PullProgress)) error {
	resp, err := e.cli.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", image, cleanErr(err))
	}
	defer resp.Close()
	layers := map[string]*layerState{}
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("pull %s: %w", image, err)
		}
		if msg.Error != nil {
			return fmt.Errorf("pull %s: %s", image, msg.Error.Message)
		}
		if progress == nil || msg.ID == "" {
			continue
		}
		l := layers[msg.ID]
		if l == nil {
			l = &layerState{}
			layers[msg.ID] = l
		}
		switch {
		case msg.Status == "Downloading" && msg.Progress != nil:
			l.current, l.total = msg.Progress.Current, msg.Progress.Total
		case msg.Status == "Download complete" || msg.Status == "Pull complete" || msg.Status == "Already exists":
			l.done = true
			if l.total > 0 {
				l.current = l.total
			}
		}
		p := protocol.PullProgress{Image: image, LayersTotal: len(layers), LastStatusLine: msg.Status}
		for _, l := range layers {
			p.BytesCurrent += l.current
			p.BytesTotal += l.total
			if l.done {
				p.LayersDone++
			}
		}
		progress(p)
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
